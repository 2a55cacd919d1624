"""Log (reserved): the tamper-evident inference log bound to a verified pipeline.

Empty until the inference log lands (issue 13). It may import :mod:`mlspec_attest.serve`
and everything below it, and nothing of :mod:`mlspec_attest.cli`.
"""
