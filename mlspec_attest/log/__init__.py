"""Log: the tamper-evident inference log bound to a verified pipeline.

One NCSA Combined Log Format line per request beside a CBOR record stream whose
records are the leaves of an RFC 6962 Merkle tree, with signed checkpoints in the
C2SP tlog-checkpoint / signed-note form (docs/logging.md).

Modules, in the order data flows through them:

* :mod:`.record` — :class:`~.record.InferenceRecord`, its CBOR map and strict decoding;
  :mod:`.ncsa` — its Combined Log Format line;
* :mod:`.merkle` — the RFC 6962 tree, compact range, proofs and their verification;
* :mod:`.note` and :mod:`.checkpoint` — C2SP signed notes and tlog checkpoints;
* :mod:`.writer` — :class:`~.writer.InferenceLog`, appending and signing
  (:mod:`.recover`: start-up checks and crash repair);
* :mod:`.audit` — :func:`~.audit.verify_log` over :mod:`.fastpath` (raw bytes, signed
  records), :mod:`.scan` and :mod:`.exact` (every record decoded), :mod:`.classify`
  (naming what happened, :mod:`.findings`); :mod:`.files` — the directory's files;
* :mod:`.proof` — inclusion and consistency proofs; :mod:`.trace` — from a request to
  the verification summary it was served under.

May import :mod:`mlspec_attest.interop`, :mod:`mlspec_attest.verify` and every layer
below them; never :mod:`mlspec_attest.serve` or :mod:`mlspec_attest.cli`.
Only this package imports cbor2.
"""
