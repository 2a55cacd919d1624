"""atheris fuzz targets, one module per parser of untrusted input (see docs/testing.md).

Run one for a minute: ``python -m tests.fuzz.targets.jsonio tests/fuzz/corpus/jsonio
-max_total_time=60`` from the project root (``make fuzz`` runs them all).
"""
