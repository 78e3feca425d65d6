"""Shared test and bench helpers, moved out of `tests/` so benches need not put `tests/` on the path."""
