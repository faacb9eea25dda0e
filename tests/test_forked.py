"""Work in a forked child: its value comes back; a child that dies leaves the work to the caller."""

from __future__ import annotations

import os
import signal
import time

import pytest

from cvmlint.forked import Forked


def test_the_value_comes_from_another_process() -> None:
    parent = os.getpid()
    job = Forked(lambda: (os.getpid(), list(range(100_000))))  # larger than a pipe's buffer
    pid, numbers = job.result()
    assert pid != parent and numbers == list(range(100_000))


def test_a_child_that_dies_leaves_the_work_to_the_caller() -> None:
    parent = os.getpid()

    def work() -> int:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    assert Forked(work).result() == parent


def test_an_error_is_raised_in_the_caller_as_without_a_child() -> None:
    def work() -> None:
        raise ValueError(f"failed in {os.getpid()}")

    with pytest.raises(ValueError, match=f"failed in {os.getpid()}$"):
        Forked(work).result()


def test_cancel_stops_the_child() -> None:
    job = Forked(lambda: time.sleep(60))
    pid = job.pid
    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left
