"""Work done in a forked child while the caller goes on (the kernel is decompressed and searched while
the root is walked): the result comes back pickled over a pipe.

A child that fails in any way other than returning leaves the work to `result()`, which then does it in
the calling process, so an error is raised where and as it would have been without the child.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Generic, NoReturn, TypeVar

from cvmlint import limits

T = TypeVar("T")


class Forked(Generic[T]):
    """`work()` started in a child process; `result()` waits for its value."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.pid, self.fd = -1, -1
        try:
            read, write = os.pipe()
            pid = os.fork()
        except OSError:  # no process to spare: result() does the work here
            return
        if pid == 0:
            os.close(read)
            _child(work, write)
        os.close(write)
        self.pid, self.fd = pid, read

    def result(self) -> T:
        if self.pid < 0:
            return self.work()
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        self.pid = -1
        if status != 0 or not chunks:
            return self.work()
        value, seen = pickle.loads(b"".join(chunks))  # our own child wrote it
        limits.merge_seen(seen)
        return value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stop the child if it still runs (the caller failed and will not ask for the result)."""
        if self.pid > 0:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            os.close(self.fd)
            self.pid = -1


def _child(work: Callable[[], object], fd: int) -> NoReturn:
    code = 1
    try:
        payload = pickle.dumps((work(), limits.seen()))
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        code = 0
    finally:
        os._exit(code)
