"""Attestation: building, signing and storing one stage attestation.

Owns ``sign_stage`` (``stage``: the steps, in order, and the sign result), what a stage
attests and the checks made before its command runs (``record``), hashing materials and
products (``artifacts``), the evidence ``sign`` computes into ``details`` (``details``),
building a stage's signer, the one place for key files, signer objects and Sigstore
keyless (``signers``), and running a stage command while hashing its output
(``runner``). The CLI's ``sign`` and the Python API (:mod:`mlspec_attest.api`) both
call into here.

May import: :mod:`mlspec_attest.policy`, :mod:`mlspec_attest.evidence`,
:mod:`mlspec_attest.signing`, :mod:`mlspec_attest.digest`, :mod:`mlspec_attest.store`,
:mod:`mlspec_attest.formats`, :mod:`mlspec_attest.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlspec_attest.formats.lazy import lazy_exports

if TYPE_CHECKING:
    from mlspec_attest.attestation.runner import run_command

#: Each lazily loaded name -> the module that defines it (the import above, for type
#: checkers): a stage signed without a command does not load the runner (subprocess).
_LAZY = {"run_command": "runner"}

__all__ = ["run_command"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
