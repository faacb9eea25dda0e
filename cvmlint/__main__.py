"""`python -m cvmlint`."""

from cvmlint.cli import main

main()
