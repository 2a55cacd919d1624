"""Serve (reserved): the deploy gate and the signed verification summary it trusts.

Empty until the gate lands (issue 13). It will import :mod:`mlspec_attest.verify` and
everything below it, and nothing of :mod:`mlspec_attest.cli`.
"""
