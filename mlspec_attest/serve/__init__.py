"""Serve (reserved): the deploy gate and the signed verification summary it trusts.

Empty until the gate lands (issue 13).

May import: :mod:`mlspec_attest.interop`, :mod:`mlspec_attest.verify` and every layer
below them; never :mod:`mlspec_attest.cli`.
"""
