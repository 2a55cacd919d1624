"""The attestation store (``mlspec_attest/store/ledger.py``): what each operation promises.

Written against the mutants ``make mutate`` left alive (docs/testing.md, "Mutation
testing"): each test pins one behaviour exactly (the error class and the words that name
the problem, the run id format, the order of results), on a real store in ``tmp_path``
with real keys and signatures.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.errors import BadInputError, StoreError, UsageError
from mlspec_attest.formats.bundle import Bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.limits import MAX_BUNDLE_BYTES, MAX_RUN_MARKER_BYTES
from mlspec_attest.store.ledger import (
    AttestationStore,
    StoredAttestation,
    check_run_id,
    default_store_path,
    new_run_id,
    open_store,
)

from .support import KeyPair

#: What ``new_run_id`` promises: UTC ``YYYYMMDDTHHMMSSZ``, a dash, 48 random bits in hex.
RUN_ID_FORMAT = re.compile(r"(\d{8}T\d{6}Z)-([0-9a-f]{12})")
RUN_ID_RULE = "use letters, digits and . _ : - (at most 128 characters)"
MARKER_REMEDY = "pass run_id (or MLSPEC_RUN_ID), or remove the store's current-run file"


def signed_bundle(key: KeyPair, payload: bytes = b"{}") -> Bundle:
    envelope = Envelope.sign(payload, INTOTO_PAYLOAD_TYPE, [key.signer])
    return Bundle.for_public_key(envelope, key.keyid)


def bundle_sha256(bundle: Bundle) -> str:
    return hashlib.sha256(canonical(bundle.to_json())).hexdigest()


def stamp_of(run_id: str) -> datetime:
    match = RUN_ID_FORMAT.fullmatch(run_id)
    assert match, f"{run_id!r} is not <UTC time>-<12 hex digits>"
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# ----------------------------------------------------------------- run ids
@pytest.fixture
def local_zone_utc_plus_14(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC+14 (a POSIX TZ string: no tz database needed)."""
    monkeypatch.setenv("TZ", "LINT-14")
    time.tzset()
    try:
        assert time.localtime().tm_gmtoff == 14 * 3600
        yield
    finally:
        monkeypatch.undo()
        time.tzset()


def test_new_run_id_is_the_utc_time_and_48_random_bits() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    run_id = new_run_id()
    after = datetime.now(UTC)
    assert before <= stamp_of(run_id) <= after
    assert check_run_id(run_id) == run_id


@pytest.mark.usefixtures("local_zone_utc_plus_14")
def test_new_run_id_is_in_utc_whatever_the_local_time_zone() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = stamp_of(new_run_id())
    assert before <= stamp <= datetime.now(UTC)  # not 14 hours ahead


def test_new_run_ids_differ_within_one_second() -> None:
    ids = [new_run_id() for _ in range(20)]
    for run_id in ids:
        stamp_of(run_id)
    assert len({run_id.split("-")[1] for run_id in ids}) == 20


@pytest.mark.parametrize("run_id", ["", "../x", "a/b", "-lead", "x" * 129, "é"])
def test_an_invalid_run_id_is_refused_with_the_rule(run_id: str) -> None:
    with pytest.raises(UsageError) as info:
        check_run_id(run_id)
    assert info.value.message == f"run id {run_id!r} is not valid"
    assert info.value.remedy == RUN_ID_RULE


# ------------------------------------------------------ the current-run marker
def test_an_oversize_current_run_marker_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "current-run"
    marker.write_bytes(b"r" * (MAX_RUN_MARKER_BYTES + 1))
    with pytest.raises(UsageError) as info:
        AttestationStore(tmp_path).current_run()
    assert info.value.message == (
        f"{marker}: larger than 4 KiB, the limit for the current-run marker"
    )
    assert info.value.remedy == MARKER_REMEDY


def test_a_current_run_marker_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    marker = tmp_path / "current-run"
    marker.write_bytes(b"r1\n".ljust(MAX_RUN_MARKER_BYTES, b" "))
    assert AttestationStore(tmp_path).current_run() == "r1"


def test_a_current_run_marker_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "current-run"
    marker.mkdir()
    with pytest.raises(UsageError) as info:
        AttestationStore(tmp_path).current_run()
    assert info.value.message == f"{marker}: cannot read (is a directory, expected a file)"
    assert info.value.remedy == MARKER_REMEDY


def test_a_non_ascii_current_run_marker_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "current-run"
    marker.write_bytes("rün-1\n".encode())
    with pytest.raises(UsageError) as info:
        AttestationStore(tmp_path).current_run()
    assert info.value.message == f"{marker}: not a run id (not ASCII)"
    assert info.value.remedy == MARKER_REMEDY


def test_a_current_run_marker_naming_an_invalid_run_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "current-run").write_text("../evil\n")
    with pytest.raises(UsageError) as info:
        AttestationStore(tmp_path).current_run()
    assert info.value.message == "run id '../evil' is not valid"
    assert info.value.remedy == RUN_ID_RULE


@pytest.mark.parametrize("content", [b"", b"\n", b"  \t\n"])
def test_an_empty_current_run_marker_names_no_run(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "current-run").write_bytes(content)
    store = AttestationStore(tmp_path)
    assert store.current_run() is None
    fresh = store.claim_run()  # a sign without a run id then starts a run
    stamp_of(fresh)
    assert (tmp_path / "current-run").read_text() == fresh + "\n"


def test_claim_run_joins_the_current_run_unless_asked_for_a_new_one(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    first = store.claim_run()
    stamp_of(first)
    assert (tmp_path / "current-run").read_text() == first + "\n"
    assert store.claim_run() == first  # joins by default
    second = store.claim_run(new_run=True)
    stamp_of(second)
    assert second != first
    assert store.current_run() == second
    assert store.claim_run() == second
    store.set_current_run("named-run")
    assert store.claim_run() == "named-run"
    assert store.runs() == []  # claiming names a run; its directory comes with the first stage


# -------------------------------------------------------------- resolve_run
#: Seven runs, oldest first: messages list the five latest.
SEVEN_RUNS = [f"2025060{day}T120000Z-00000000000{day}" for day in range(1, 8)]
FIVE_LATEST = ", ".join(SEVEN_RUNS[2:])


def make_runs(store: AttestationStore, names: list[str]) -> None:
    for name in names:
        store.run_dir(name).mkdir(parents=True)


def test_resolve_run_in_an_empty_store(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    with pytest.raises(BadInputError) as info:
        store.resolve_run(None)
    assert type(info.value) is BadInputError
    assert info.value.message == f"store {tmp_path} holds no attestations"
    assert info.value.remedy == (
        "pass store pointing at the pipeline's store, or sign the stages first"
    )
    with pytest.raises(BadInputError) as info:
        store.resolve_run("r9")
    assert type(info.value) is BadInputError
    assert info.value.message == f"store {tmp_path} has no run 'r9'"
    assert info.value.remedy == "check run_id and store"  # no list of runs: there are none


def test_resolve_run_of_a_missing_run_lists_the_five_latest(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    make_runs(store, SEVEN_RUNS)
    with pytest.raises(BadInputError) as info:
        store.resolve_run("r9")
    assert type(info.value) is BadInputError
    assert info.value.message == f"store {tmp_path} has no run 'r9'"
    assert info.value.remedy == f"check run_id and store (runs: {FIVE_LATEST})"


def test_resolve_run_of_a_missing_run_lists_all_of_few_runs(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    make_runs(store, ["r2", "r1"])
    with pytest.raises(BadInputError) as info:
        store.resolve_run("r3")
    assert info.value.remedy == "check run_id and store (runs: r1, r2)"


def test_resolve_run_without_a_run_id_among_several(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    make_runs(store, SEVEN_RUNS)
    with pytest.raises(UsageError) as info:
        store.resolve_run(None)
    assert info.value.message == f"store {tmp_path} holds 7 runs; say which one to verify"
    assert info.value.remedy == f"pass run_id (runs: {FIVE_LATEST})"
    assert [store.resolve_run(run) for run in SEVEN_RUNS] == SEVEN_RUNS


def test_resolve_run_refuses_an_invalid_run_id_before_looking(tmp_path: Path) -> None:
    store = AttestationStore(tmp_path)
    make_runs(store, ["r1"])
    with pytest.raises(UsageError) as info:
        store.resolve_run("../r1")
    assert info.value.message == "run id '../r1' is not valid"


# ------------------------------------------------------------- attestations
def test_add_refuses_when_every_name_is_taken(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    key = keys["owner"]
    bundle = signed_bundle(key)
    digest = bundle_sha256(bundle)
    run = tmp_path / "runs/r1"
    run.mkdir(parents=True)
    names = [
        f"s.{key.keyid[:8]}{tail}.sigstore.json" for tail in ("", f".{digest[:16]}", f".{digest}")
    ]
    for name in names:
        (run / name).write_text("squatter")
    with pytest.raises(StoreError) as info:
        AttestationStore(tmp_path).add("r1", "s", key.keyid, bundle)
    assert info.value.message == (
        f"cannot store the attestation of stage 's': {run / names[2]} is taken"
    )
    assert sorted(p.name for p in run.iterdir()) == sorted(names)  # nothing left behind
    assert {(run / name).read_text() for name in names} == {"squatter"}  # nothing replaced


@pytest.mark.parametrize("stage", ["../x", "x/../../y", "/abs", "", "Train", "a b", "s\n"])
def test_add_refuses_an_invalid_stage_name_before_writing(
    tmp_path: Path, keys: dict[str, KeyPair], stage: str
) -> None:
    # add is public: a stage like ../x must not write outside the run directory.
    key = keys["owner"]
    with pytest.raises(UsageError) as info:
        AttestationStore(tmp_path / "store").add("r1", stage, key.keyid, signed_bundle(key))
    assert info.value.message == f"stage name {stage!r} is not valid"
    assert info.value.remedy == "use lower-case letters, digits and . _ - (e.g. train, data-split)"
    assert not (tmp_path / "store").exists()  # nothing written, not even the run directory
    assert list(tmp_path.iterdir()) == []


def test_open_store_is_the_given_path_else_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert open_store(tmp_path).root == tmp_path
    monkeypatch.delenv("MLSPEC_ATTEST_STORE", raising=False)
    assert open_store(None).root == default_store_path() == Path(".mlspec/attestations")
    monkeypatch.setenv("MLSPEC_ATTEST_STORE", str(tmp_path / "env"))
    assert open_store(None).root == tmp_path / "env"


def test_add_passes_over_a_directory_squatting_on_the_name(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    # A name that cannot be read is not "already holding these bytes".
    key = keys["owner"]
    bundle = signed_bundle(key)
    digest = bundle_sha256(bundle)
    run = tmp_path / "runs/r1"
    (run / f"s.{key.keyid[:8]}.sigstore.json").mkdir(parents=True)
    path = AttestationStore(tmp_path).add("r1", "s", key.keyid, bundle)
    assert path == run / f"s.{key.keyid[:8]}.{digest[:16]}.sigstore.json"
    assert path.read_bytes() == canonical(bundle.to_json())


@pytest.mark.parametrize("planted", ["fifo", "larger", "shorter"])
def test_a_file_planted_at_the_name_is_compared_bounded_and_never_blocks(
    tmp_path: Path, keys: dict[str, KeyPair], planted: str
) -> None:
    # Whoever can write the store may plant a FIFO (reading it would wait for a writer
    # forever) or a file of any size at the name the next attestation takes: it is
    # not "the same bytes", so the attestation goes to the next name, whole.
    key = keys["owner"]
    bundle = signed_bundle(key)
    data = canonical(bundle.to_json())
    run = tmp_path / "runs/r1"
    run.mkdir(parents=True)
    first = run / f"s.{key.keyid[:8]}.sigstore.json"
    if planted == "fifo":
        os.mkfifo(first)
    else:
        first.write_bytes(data + b" " if planted == "larger" else data[:-1])
    path = AttestationStore(tmp_path).add("r1", "s", key.keyid, bundle)
    assert path == run / f"s.{key.keyid[:8]}.{bundle_sha256(bundle)[:16]}.sigstore.json"
    assert path.read_bytes() == data


def test_add_of_the_same_bytes_again_is_a_no_op(tmp_path: Path, keys: dict[str, KeyPair]) -> None:
    key = keys["owner"]
    store = AttestationStore(tmp_path)
    bundle = signed_bundle(key)
    path = store.add("r1", "train", key.keyid, bundle)
    inode = path.stat().st_ino
    assert store.add("r1", "train", key.keyid, bundle) == path
    assert path.stat().st_ino == inode
    assert [p.name for p in (tmp_path / "runs/r1").iterdir()] == [path.name]


def test_an_unreadable_entry_does_not_hide_the_attestations_after_it(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    key = keys["owner"]
    store = AttestationStore(tmp_path)
    bundle = signed_bundle(key)
    good = store.add("r1", "train", key.keyid, bundle)
    run = good.parent
    (run / "a-json.sigstore.json").write_text('{"mediaType": "text/plain"}')
    (run / "b-broken.sigstore.json").write_text("{not json")
    stored = list(store.attestations("r1"))
    assert [s.path for s in stored] == [
        run / "a-json.sigstore.json",
        run / "b-broken.sigstore.json",
        good,
    ]
    # A bundle error names the file by its name in the run (what the verifier reports).
    assert stored[0] == StoredAttestation(
        run / "a-json.sigstore.json",
        None,
        "a-json.sigstore.json: unsupported bundle mediaType 'text/plain'",
    )
    assert stored[1].bundle is None
    assert stored[1].error is not None and "not valid JSON" in stored[1].error
    assert stored[2] == StoredAttestation(good, bundle)


def test_an_oversize_bundle_is_refused_before_it_is_read(tmp_path: Path) -> None:
    run = tmp_path / "runs/r1"
    run.mkdir(parents=True)
    big = run / "big.sigstore.json"
    with big.open("wb") as fh:
        fh.truncate(MAX_BUNDLE_BYTES + 1)  # sparse: nothing is written, nothing need be read
    assert list(AttestationStore(tmp_path).attestations("r1")) == [
        StoredAttestation(big, None, f"{big}: larger than 48 MiB, the limit for a Sigstore bundle")
    ]


def test_attestations_of_a_run_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs/r1").write_text("not a run")
    with pytest.raises(BadInputError) as info:
        list(AttestationStore(tmp_path).attestations("r1"))
    assert info.value.message == f"store {tmp_path} has no run 'r1'"


# ------------------------------------------------------------ claimed stage
@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (canonical({"predicate": {"name": "train"}}), "train"),
        (canonical({"predicate": {"name": 42}}), None),
        (canonical({"predicate": {"name": ["train"]}}), None),
        (canonical({"predicate": {"name": None}}), None),
        (canonical({"predicate": {}}), None),
        (canonical({"predicate": "train"}), None),
        (canonical(["predicate"]), None),
        (b"not json", None),
    ],
)
def test_claimed_stage_is_a_string_or_none(
    tmp_path: Path, keys: dict[str, KeyPair], payload: bytes, expected: str | None
) -> None:
    store = AttestationStore(tmp_path)
    bundle = signed_bundle(keys["owner"], payload)
    store.add("r1", "train", keys["owner"].keyid, bundle)
    [stored] = store.attestations("r1")
    assert stored.bundle == bundle
    assert stored.claimed_stage() == expected
    assert stored.payload_digest == "sha256:" + hashlib.sha256(payload).hexdigest()


def test_claimed_stage_of_an_unparsed_file_is_none(tmp_path: Path) -> None:
    stored = StoredAttestation(tmp_path / "x.sigstore.json", None, "x: broken")
    assert stored.claimed_stage() is None
    assert stored.payload_digest is None
