"""Slow, readable loop-based references for the tests (one Python loop per formula)."""
