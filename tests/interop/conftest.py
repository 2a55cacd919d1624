"""Fixtures shared by the interop tests: the loopback Sigstore instance for keyless paths."""

from ..sigstore.instance import sigstore_instance, sigstore_instance_factory

__all__ = ["sigstore_instance", "sigstore_instance_factory"]
