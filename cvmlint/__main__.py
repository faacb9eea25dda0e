"""`python -m cvmlint` and the `cvmlint` command: `--version` is answered before the command line's
modules load (it is what scripts call to probe for the tool); everything else goes to cvmlint.cli."""

import sys


def main() -> None:
    """The `cvmlint` command."""
    if sys.argv[1:] == ["--version"]:
        from cvmlint import __version__

        print(f"cvmlint {__version__}")
        return
    from cvmlint.cli import main as run

    run()


if __name__ == "__main__":
    main()
