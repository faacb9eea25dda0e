"""The `cvmlint` entry point: parse the command line, run the command, turn every cvmlint error into
its message and exit code 2. The commands are in cvmlint/commands/, one module each."""

from __future__ import annotations

import os
import sys
from contextlib import suppress

from cvmlint import __version__
from cvmlint.cliargs import Opt, build_parser
from cvmlint.commands.common import err
from cvmlint.errors import SHOWN_BYTES, CvmlintError, register_output_errors

TOP_OPTIONS = (
    Opt(
        ("--limit",),
        "limit",
        "Raise (or lower) a resource limit, e.g. kernel-bytes=512M; repeat for several. `cvmlint limits` lists them.",
        many=True,
        metavar="NAME=VALUE",
    ),
    Opt(
        ("--timeout",),
        "timeout",
        "Wall-clock budget of a scan or lint (default 900): past it, what is unfinished is unknown with that reason.",
        kind=int,
        metavar="SECONDS",
    ),
)


def _configure(limit: list[str] | None, timeout: int | None) -> None:
    from cvmlint import limits

    if limit:
        limits.configure(limits.parse_options(limit), "--limit")
    if timeout is not None:
        limits.configure({"timeout": timeout}, "--timeout")
    limits.start_clock()


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the command; every cvmlint error becomes a message and exit code 2."""
    code = _run(argv)
    if argv is None:
        # NOTE: the process ends here: skip tearing down a scan's objects one by one (a third of a
        # second for a large root), as mypy does; the streams are flushed first.
        try:
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            code = code or 1
        with suppress(BrokenPipeError, ValueError):
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run(argv: list[str] | None) -> int:
    register_output_errors()
    for stream in (sys.stdout, sys.stderr):  # a file name an image or recipe chose may not be UTF-8
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=SHOWN_BYTES)
    try:
        _dispatch(sys.argv[1:] if argv is None else argv)
    except SystemExit as done:
        return _exit_code(done.code)
    except CvmlintError as error:
        err(error.diagnostics())
        return 2
    except KeyboardInterrupt:
        err("cvmlint: interrupted")
        return 130
    except Exception as error:  # pragma: no cover - a bug: say so briefly, show details on request
        if os.environ.get("CVMLINT_DEBUG"):
            raise
        err(f"cvmlint: internal error: {type(error).__name__}: {error}")
        err("Tip: rerun with CVMLINT_DEBUG=1 for the traceback, and report it.")
        return 2
    finally:
        if os.environ.get("CVMLINT_LIMIT_STATS"):
            from cvmlint import limits

            limits.write_stats()
    return 0


def _dispatch(argv: list[str]) -> None:
    from cvmlint import commands

    commands.load()
    parser = build_parser(
        "cvmlint",
        "Policy-as-code linter and image compliance checker for confidential-VM base images:\n"
        "one policy, enforced on mkosi recipes and on built images.",
        TOP_OPTIONS,
        f"cvmlint {__version__}",
        argv,
    )
    namespace = parser.parse_args(argv)
    chosen = getattr(namespace, "_command", None)
    if chosen is None:  # `cvmlint` or `cvmlint policy` alone: what there is to run
        namespace._group.print_help(sys.stderr)
        raise SystemExit(2)
    _configure(namespace.limit, namespace.timeout)
    chosen.call(namespace)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err(str(code))
    return 1
