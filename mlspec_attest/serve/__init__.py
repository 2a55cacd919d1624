"""Serve: the gate that opens only verified model bytes, the reference server, the
``/ok`` ``/varz`` ``/metrics`` endpoints and the middleware that logs every request.

May import :mod:`mlspec_attest.log` and every layer below it; never
:mod:`mlspec_attest.cli`. Only this package imports starlette, uvicorn and
prometheus_client (docs/serving.md).
"""
