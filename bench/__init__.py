"""Benchmarks that print figures (one JSON object per figure, last lines of output). Not tests."""
