"""Tests of serve/: the gate, the loaders, the reference server."""
