"""Questions asked of the attestation index; every answer is a JSON-ready value.

The answers are what the indexed bundles *claim* (no signature is checked here):
use them to find things, then verify the run before you rely on it.
:class:`AttestationIndex` is the one interface the CLI asks, over either backend
(:mod:`mlspec_attest.store.index_backend`): the SQL below is the subset SQLite and
PostgreSQL both speak, with ``?`` placeholders, and orders every answer fully (text by
code point, NULLs first) so both backends give the same answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from mlspec_attest.errors import BadInputError
from mlspec_attest.store.index_backend import IndexDb
from mlspec_attest.store.lineage import (
    Artifact,
    Digest,
    Step,
    downstream,
    models_of,
    producer,
    upstream,
)

_DIGEST = re.compile(r"([a-z0-9-]{1,32}):([0-9a-f]{16,128})")
_SUMMARY_KEYS = ("digest", "result", "policyDigest", "timeVerified", "file")


def parse_digest(text: str) -> Digest:
    """``ALGORITHM:HEX`` (``sha256:…``) as (algorithm, value); BadInputError otherwise."""
    match = _DIGEST.fullmatch(text.strip())
    if match is None:
        raise BadInputError(
            f"{text!r} is not a digest",
            remedy="give it as ALGORITHM:HEX, for example sha256:<64 lowercase hex digits>",
        )
    return match.group(1), match.group(2)


class AttestationIndex:
    """Read-only queries over an index built by :func:`mlspec_attest.store.index.build_index`."""

    def __init__(self, db: IndexDb) -> None:
        self.db = db

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def snapshot(self) -> Iterator[AttestationIndex]:
        """Every query inside reads one committed state of the index."""
        with self.db.snapshot():
            yield self

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.all(sql, params)

    # runs -----------------------------------------------------------------
    def run_ids(self) -> list[str]:
        return [r[0] for r in self._all("SELECT run_id FROM runs ORDER BY run_id")]

    def runs(self) -> list[dict[str, Any]]:
        """Every run: stage count, malformed bundles, time span, summaries' results."""
        rows = self._all(
            "SELECT r.run_id, COUNT(DISTINCT a.stage), COUNT(a.id), COUNT(a.error),"
            " MIN(a.started_on), MAX(a.finished_on) FROM runs r"
            " LEFT JOIN attestations a ON a.run_id = r.run_id GROUP BY r.run_id ORDER BY r.run_id"
        )
        summaries: dict[str, list[dict[str, Any]]] = {}
        for run, *values in self._all(
            "SELECT run_id, payload_digest, result, policy_digest, time_verified, file"
            " FROM summaries WHERE run_id IS NOT NULL ORDER BY run_id, time_verified NULLS FIRST, file"
        ):
            summaries.setdefault(run, []).append(dict(zip(_SUMMARY_KEYS, values, strict=True)))
        return [
            {
                "runId": run,
                "stages": stages,
                "attestations": count,
                "malformed": malformed,
                "startedOn": first,
                "finishedOn": last,
                "summaries": summaries.get(run, []),
            }
            for run, stages, count, malformed, first, last in rows
        ]

    def summaries(self, run_id: str) -> list[dict[str, Any]]:
        """The verification summaries stored for ``run_id``: result, policy, time, signer,
        subjects (name and digest set) and input attestations (stage, uri, sha256)."""
        rows = self._all(
            "SELECT id, payload_digest, result, policy_digest, time_verified, file, keyid,"
            " identity, issuer FROM summaries WHERE run_id = ?"
            " ORDER BY time_verified NULLS FIRST, file",
            (run_id,),
        )
        subjects = self._summary_subjects(run_id)
        inputs: dict[int, list[dict[str, str]]] = {}
        for owner, stage, uri, sha256 in self._all(
            "SELECT i.summary_id, i.stage, i.uri, i.sha256 FROM summary_inputs i"
            " JOIN summaries s ON s.id = i.summary_id WHERE s.run_id = ?"
            " ORDER BY i.summary_id, i.stage, i.uri, i.sha256",
            (run_id,),
        ):
            inputs.setdefault(owner, []).append({"stage": stage, "uri": uri, "sha256": sha256})
        return [
            {
                **dict(zip(_SUMMARY_KEYS, values, strict=True)),
                "signer": {"keyid": keyid, "identity": identity, "issuer": issuer},
                "subjects": [a.to_json() for a in subjects.get(ident, [])],
                "inputs": inputs.get(ident, []),
            }
            for ident, *values, keyid, identity, issuer in rows
        ]

    def _summary_subjects(self, run_id: str) -> dict[int, list[Artifact]]:
        rows = self._all(
            "SELECT t.id, t.summary_id, t.side, t.name, t.role, d.algorithm, d.value"
            " FROM artifacts t JOIN summaries s ON s.id = t.summary_id"
            " LEFT JOIN digests d ON d.artifact_id = t.id WHERE s.run_id = ? ORDER BY t.id",
            (run_id,),
        )
        return _group(rows)

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's attestations (stage, kind, signer, digests) and its summaries."""
        self.check_run(run_id)
        rows = self._all(
            "SELECT id, stage, kind, file, payload_digest, keyid, identity, issuer, signed_time,"
            " policy_digest, started_on, finished_on, error FROM attestations WHERE run_id = ?"
            " ORDER BY started_on NULLS FIRST, stage NULLS FIRST, file",
            (run_id,),
        )
        artifacts = self._artifacts(run_id)
        stages = []
        for ident, stage, kind, file, payload, keyid, identity, issuer, signed, *rest in rows:
            policy, started, finished, error = rest
            stages.append(
                {
                    "stage": stage,
                    "kind": kind,
                    "file": file,
                    "payloadDigest": payload,
                    "signer": {"keyid": keyid, "identity": identity, "issuer": issuer},
                    "signedTime": signed,
                    "policyDigest": policy,
                    "startedOn": started,
                    "finishedOn": finished,
                    "materials": [a.to_json() for a in artifacts.get((ident, "material"), [])],
                    "products": [a.to_json() for a in artifacts.get((ident, "product"), [])],
                    "error": error,
                }
            )
        return {"runId": run_id, "stages": stages, "summaries": self.summaries(run_id)}

    def check_run(self, run_id: str) -> None:
        if not self._all("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)):
            known = self.run_ids()
            raise BadInputError(
                f"the store has no run {run_id!r}",
                remedy="list the runs with `query runs`"
                + (f" (latest: {', '.join(known[-5:])})" if known else ""),
            )

    def _artifacts(self, run_id: str) -> dict[tuple[int, str], list[Artifact]]:
        rows = self._all(
            "SELECT t.id, t.attestation_id, t.side, t.name, t.role, d.algorithm, d.value"
            " FROM artifacts t JOIN attestations a ON a.id = t.attestation_id"
            " LEFT JOIN digests d ON d.artifact_id = t.id WHERE a.run_id = ? ORDER BY t.id",
            (run_id,),
        )
        out: dict[tuple[int, str], list[Artifact]] = {}
        for owner, artifacts in _group(rows).items():
            for artifact in artifacts:
                out.setdefault((owner, artifact.side), []).append(artifact)
        return out

    # lineage ----------------------------------------------------------------
    def steps(self, run_id: str) -> list[Step]:
        """A run's well-formed attestations with their artifacts, for lineage."""
        rows = self._all(
            "SELECT id, stage, kind, file, command FROM attestations"
            " WHERE run_id = ? AND error IS NULL"
            " ORDER BY started_on NULLS FIRST, stage NULLS FIRST, file",
            (run_id,),
        )
        artifacts = self._artifacts(run_id)
        return [
            Step(
                stage,
                kind,
                file,
                tuple(json.loads(command)),
                tuple(artifacts.get((i, "material"), []) + artifacts.get((i, "product"), [])),
            )
            for i, stage, kind, file, command in rows
        ]

    def stage_values(self, run_id: str) -> list[tuple[str, str, str, str]]:
        """(stage, file, parameters JSON, metrics JSON) of a run's well-formed attestations."""
        rows = self._all(
            "SELECT stage, file, parameters, metrics FROM attestations"
            " WHERE run_id = ? AND error IS NULL ORDER BY stage NULLS FIRST, file",
            (run_id,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def runs_with(self, digest: Digest) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT a.run_id FROM digests d JOIN artifacts t ON t.id = d.artifact_id"
            " JOIN attestations a ON a.id = t.attestation_id"
            " WHERE d.algorithm = ? AND d.value = ? ORDER BY a.run_id",
            digest,
        )
        return [r[0] for r in rows]

    def models_from(self, digest: Digest) -> list[dict[str, Any]]:
        """Models (train and package products) whose data chain read ``digest``."""
        out = []
        for run_id in self.runs_with(digest):
            for step, model in models_of(downstream(self.steps(run_id), {digest})):
                out.append(
                    {"runId": run_id, "stage": step.stage, "kind": step.kind, **model.to_json()}
                )
        return out

    def inputs_of(self, digest: Digest, run_id: str | None = None) -> list[dict[str, Any]]:
        """Per run: the data-chain stages behind ``digest`` (a model), what each read and ran."""
        out = []
        for run in [run_id] if run_id else self.runs_with(digest):
            steps = self.steps(run)
            chain = upstream(steps, {digest})
            if not chain:
                continue
            stages = [
                {
                    "stage": step.stage,
                    "kind": step.kind,
                    "command": list(step.command),
                    "materials": [
                        {**m.to_json(), "producedBy": producer(steps, m)}
                        for m in step.side("material")
                    ],
                }
                for step in chain
            ]
            out.append({"runId": run, "stages": stages})
        return out

    # signers ------------------------------------------------------------------
    def signed_by(
        self, *, keyid: str | None = None, identity: str | None = None
    ) -> list[dict[str, Any]]:
        """Every run with an attestation the key id or Sigstore identity claims to have signed."""
        select = "SELECT run_id, stage, file, payload_digest FROM attestations"
        order = " ORDER BY run_id, started_on NULLS FIRST, stage NULLS FIRST, file"
        if keyid:
            rows = self._all(select + " WHERE keyid = ?" + order, (keyid,))
        else:
            rows = self._all(select + " WHERE identity = ?" + order, (identity,))
        runs: dict[str, list[dict[str, Any]]] = {}
        for run, stage, file, payload in rows:
            runs.setdefault(run, []).append(
                {"stage": stage, "file": file, "payloadDigest": payload}
            )
        return [{"runId": run, "attestations": items} for run, items in runs.items()]


def _group(rows: list[tuple[Any, ...]]) -> dict[int, list[Artifact]]:
    """(artifact id, owner id, side, name, role, algorithm, value) rows, ordered by artifact
    id, as each owner's artifacts with their digest sets."""
    grouped: dict[int, tuple[int, str, str, str | None, set[Digest]]] = {}
    for ident, owner, side, name, role, algorithm, value in rows:
        entry = grouped.setdefault(ident, (owner, side, name, role, set()))
        if algorithm is not None:
            entry[4].add((algorithm, value))
    out: dict[int, list[Artifact]] = {}
    for owner, side, name, role, digests in grouped.values():
        out.setdefault(owner, []).append(Artifact(side, name, role, frozenset(digests)))
    return out
