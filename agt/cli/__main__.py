"""``python -m agt.cli``."""

from agt.cli import main

main()
