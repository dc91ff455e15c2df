"""`make bench`: figures, not pass/fail. Run with `python -m bench [--json] [--quick]`."""
