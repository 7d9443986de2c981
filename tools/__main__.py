"""`python -m tools`: the development CLI (tools/cli.py)."""

from tools.cli import main

main()
