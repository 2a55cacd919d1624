"""Fixtures for the Sigstore tiers: interop data, the in-process CLI, the loopback instance."""

from __future__ import annotations

from ..cli.conftest import Cli, CliResult, cli
from .instance import SigstoreInstance, sigstore_instance, sigstore_instance_factory

__all__ = [
    "Cli",
    "CliResult",
    "SigstoreInstance",
    "cli",
    "sigstore_instance",
    "sigstore_instance_factory",
]
