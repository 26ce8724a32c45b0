"""``python -m mlservice``: the command line (see :mod:`mlservice.cli`)."""

from .cli import main

main()
