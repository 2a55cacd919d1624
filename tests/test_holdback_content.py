"""Fail-closed ML evidence: the hold-back split recognised by content, shard directories, refusals.

A real signed pipeline (tests/mlpipeline.py: objectives -> validate -> split ->
train -> evaluate -> test, real keys and files); each case cheats once and
asserts the exact checks that deny it, with the stage and the reason. Where a
case needs evidence a correct signer never writes (an older record, a record
naming another file), the stage's statement is edited and signed again with
the stage's own key, before any later stage is signed.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli.main import main
from mlspec_attest.errors import BadInputError
from mlspec_attest.formats.bundle import sign_to_bundle
from mlspec_attest.formats.dsse import INTOTO_PAYLOAD_TYPE
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.verify.report import Check

from .mlpipeline import STAGE_SIGNERS, MakeML, MLPipeline, csv, only, write
from .support import KeyPair, checks_of


def until(ml: MLPipeline, last: str) -> None:
    """Sign the stages up to and including ``last``."""
    for stage in STAGE_SIGNERS:
        getattr(ml, f"sign_{stage}")()
        if stage == last:
            return


def resign(ml: MLPipeline, stage: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    """Edit a signed statement and sign it again with the stage's own key."""
    path = ml.signed_stages[stage].path
    doc = json.loads(path.read_bytes())
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    mutate(statement)
    signer = ml.key(STAGE_SIGNERS[stage]).signer
    bundle, _ = sign_to_bundle(canonical(statement), INTOTO_PAYLOAD_TYPE, signer)
    path.write_bytes(canonical(bundle.to_json()))


def details(statement: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = statement["predicate"]["byproducts"]["mlspec"]["details"]
    return found


def holdback_text(ml: MLPipeline) -> str:
    return (ml.ws / "data/split/holdback.csv").read_text()


# -- the hold-back split recognised by content -----------------------------------
def test_evaluate_reading_a_gzip_copy_of_the_holdback_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/extra.csv.gz", gzip.compress(holdback_text(ml).encode()))
    ml.sign_evaluate(extra_materials=["data/extra.csv.gz"])
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert failure.stage == "evaluate"
    assert failure.message == (
        "stage read 6 row(s) of the hold-back split data/split/holdback.csv "
        "in material data/extra.csv.gz"
    )
    assert failure.found == "6 hold-back row(s) in data/extra.csv.gz (csv, 6 rows)"


def test_evaluate_reading_a_crlf_copy_of_the_holdback_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/windows.csv", holdback_text(ml).replace("\n", "\r\n"))
    ml.sign_evaluate(extra_materials=["data/windows.csv"])
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert (failure.stage, "6 row(s)" in failure.message) == ("evaluate", True)
    assert "data/windows.csv" in failure.message


def test_evaluate_reading_a_parquet_copy_of_the_holdback_is_denied(ml: MLPipeline) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    until(ml, "train")
    rows = [line.split(",") for line in holdback_text(ml).splitlines()[1:]]
    table = pa.table(
        {
            "target": [int(r[3]) for r in rows],
            "sex": [r[2] for r in rows],
            "bmi": [float(r[1]) for r in rows],
            "age": [int(r[0]) for r in rows],
        }
    )
    pq.write_table(table, ml.ws / "data/cache.parquet")
    ml.sign_evaluate(extra_materials=["data/cache.parquet"])
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert failure.stage == "evaluate"
    assert failure.found == "6 hold-back row(s) in data/cache.parquet (parquet, 6 rows)"


def test_a_renamed_gzip_copy_is_recognised_by_its_bytes(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/blob.bin", gzip.compress(holdback_text(ml).encode()))
    ml.sign_evaluate(extra_materials=["data/blob.bin"])
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert "material data/blob.bin" in failure.message


@pytest.mark.parametrize(
    "name", ["data/notes.txt", "data/part-00000", "data/picture.png", "data/cache/notes.txt"]
)
def test_rows_under_a_name_that_is_not_tabular_are_read_by_their_content(
    ml: MLPipeline, name: str
) -> None:
    # named as text or media, or with no suffix inside a material directory, a copy of
    # the hold-back was hashed whole or skipped, and evaluate's reading it passed
    until(ml, "train")
    lines = holdback_text(ml).splitlines()
    write(ml.ws / name, "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    material = "data/cache" if name.startswith("data/cache/") else name
    ml.sign_evaluate(extra_materials=[material])
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert failure.stage == "evaluate"
    assert f"material {material}" in failure.message


def test_a_binary_file_of_a_material_directory_is_still_no_rows(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/cache/weights.bin", bytes(range(256)) * 64)
    write(ml.ws / "data/cache/README.txt", "Model notes.\nNothing tabular here.\n")
    ml.sign_evaluate(extra_materials=["data/cache"])
    ml.sign_test()
    assert ml.verify().failures == []


def test_train_reading_a_copy_with_an_extra_constant_column_is_denied(ml: MLPipeline) -> None:
    until(ml, "split")
    lines = holdback_text(ml).splitlines()
    write(
        ml.ws / "data/more.csv", "\n".join(["Source," + lines[0]] + [f"x,{r}" for r in lines[1:]])
    )
    ml.sign_train(extra_materials=["data/more.csv"])
    ml.sign_evaluate()
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert (failure.stage, "6 row(s)" in failure.message) == ("train", True)


def test_one_holdback_row_mixed_into_the_evaluation_data_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    validation = (ml.ws / "data/split/validation.csv").read_text()
    leaked = holdback_text(ml).splitlines()[3]
    write(ml.ws / "data/val-plus.csv", validation + leaked + "\n")
    ml.sign_evaluate(data="data/val-plus.csv")
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_READ)
    assert failure.stage == "evaluate"
    assert "stage read 1 row(s) of the hold-back split" in failure.message
    assert failure.expected == (
        "no row of the 'holdback' split (data/split/holdback.csv) in any material"
    )


def test_the_splits_own_products_are_left_to_the_leakage_proof(make_ml: MakeML) -> None:
    """Train reads train.csv, which shares a row with the hold-back: the tolerance decides."""
    report = make_ml(tolerance=1).run(split={"duplicate_row": True}).verify()
    assert report.failures == []


# -- stages ordered before the split --------------------------------------------------
class ValidateMustNotRead(MLPipeline):
    """The policy lists validate in notReadBy; ``ordered`` says whether split runs after it."""

    ordered = True

    def write_policy(self, **kw: Any) -> Any:
        import tests.mlpipeline as module

        template = module.POLICY_TEMPLATE
        patched = template.replace(
            "  test: test\n", "  test: test\n  notReadBy: [validate, train, evaluate]\n"
        )
        if not self.ordered:
            patched = patched.replace("    after: [validate]\n", "")
        module.POLICY_TEMPLATE = patched
        try:
            return super().write_policy(**kw)
        finally:
            module.POLICY_TEMPLATE = template


class ValidateUnordered(ValidateMustNotRead):
    ordered = False


def test_a_stage_ordered_before_the_split_may_read_all_rows(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    report = ValidateMustNotRead(tmp_path / "p", keys).run().verify()
    assert report.failures == []


def test_a_stage_not_ordered_before_the_split_must_not_read_holdback_rows(
    tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    report = ValidateUnordered(tmp_path / "p", keys).run().verify()
    [failure] = only(report, Check.HOLDBACK_READ)
    assert failure.stage == "validate"
    assert "stage read 6 row(s) of the hold-back split" in failure.message
    assert "material data/raw.csv" in failure.message


# -- evidence that cannot be used -------------------------------------------------
def test_a_stage_without_material_row_fingerprints_is_denied(ml: MLPipeline) -> None:
    until(ml, "evaluate")
    resign(ml, "evaluate", lambda st: details(st).pop("materialRows"))
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert failure.stage == "evaluate"
    assert failure.message.startswith("the stage records no row fingerprints of its materials")
    assert failure.error == "HoldbackReadError"


def test_a_fingerprint_naming_a_file_the_stage_did_not_read_is_denied(ml: MLPipeline) -> None:
    until(ml, "evaluate")

    def rename(st: dict[str, Any]) -> None:
        materials = details(st)["materialRows"]["materials"]
        materials["data/other.csv"] = materials.pop("data/split/validation.csv")

    resign(ml, "evaluate", rename)
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert failure.stage == "evaluate"
    assert "names data/other.csv, which the stage did not read" in failure.message
    assert "has no entry for data/split/validation.csv" in failure.message


def test_a_missing_material_digest_set_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/notes.csv", "note,score\nfine,1\nok,2\n")
    evaluate = ml.sign_evaluate(extra_materials=["data/notes.csv"])
    ml.sign_test()
    entry = evaluate.statement.metadata.details["materialRows"]["materials"]["data/notes.csv"]
    address = entry["contentSets"]["all"]["digestSet"]
    (ml.store_path / "blobs/sha256" / address.removeprefix("sha256:")).unlink()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert failure.stage == "evaluate"
    assert failure.message.startswith(f"material data/notes.csv: digest set {address} is not in")
    assert failure.message.endswith("[digest-set-missing]")


def test_a_material_count_that_does_not_match_its_digest_set_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/notes.csv", "note,score\nfine,1\nok,2\n")
    ml.sign_evaluate(extra_materials=["data/notes.csv"])

    def shrink(st: dict[str, Any]) -> None:
        details(st)["materialRows"]["materials"]["data/notes.csv"]["contentSets"]["all"][
            "unique"
        ] = 1

    resign(ml, "evaluate", shrink)
    ml.sign_test()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert "the stored digest set holds 2 distinct rows, the attestation says 1" in failure.message
    assert failure.message.endswith("[attested-count-wrong]")


def test_an_unreadable_tabular_material_is_denied(ml: MLPipeline) -> None:
    until(ml, "train")
    write(ml.ws / "data/ragged.csv", "a,b\n1,2\n3\n")
    evaluate = ml.sign_evaluate(extra_materials=["data/ragged.csv"])  # signing records why
    ml.sign_test()
    entry = evaluate.statement.metadata.details["materialRows"]["materials"]["data/ragged.csv"]
    assert entry == {"format": "unreadable", "reason": entry["reason"]}
    assert "1 fields, the header has 2" in entry["reason"]
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)
    assert failure.stage == "evaluate"
    assert "material data/ragged.csv looks like rows but could not be read" in failure.message


def test_a_holdback_content_set_that_does_not_match_its_count_is_denied(ml: MLPipeline) -> None:
    until(ml, "split")

    def grow(st: dict[str, Any]) -> None:
        details(st)["leakage"]["splits"]["holdback"]["contentSets"]["all"]["unique"] = 7

    resign(ml, "split", grow)
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    [failure] = only(ml.verify(), Check.HOLDBACK_EVIDENCE)  # the proof set itself is intact
    assert failure.stage == "split"
    assert failure.message == (
        "split 'holdback': the stored digest set holds 6 distinct rows, the attestation says 7 "
        "[attested-count-wrong]"
    )


def test_material_rows_cannot_be_supplied(ml: MLPipeline) -> None:
    from mlspec_attest.errors import UsageError

    until(ml, "train")
    with pytest.raises(UsageError, match=r"details\.materialRows is computed by sign"):
        ml.sign_evaluate(details={"materialRows": {"materials": {}}})


# -- the leakage proof ------------------------------------------------------------
def test_a_v1_leakage_record_is_refused_with_its_reason(ml: MLPipeline) -> None:
    until(ml, "split")

    def to_v1(st: dict[str, Any]) -> None:
        record = details(st)["leakage"]
        record["schemaVersion"] = "https://mlspec-attest.dev/leakage/v1"
        record["canonicalization"] = "mlspec-rows/v1"

    resign(ml, "split", to_v1)
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    report = ml.verify()
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_EVIDENCE}
    for failure in report.failures:
        assert failure.stage == "split"
        assert "'mlspec-rows/v1', which this verifier refuses" in failure.message
    [leakage] = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert leakage.message.endswith("[canonicalization-retired]")
    assert "re-run the split stage" in leakage.remedy


def test_a_leakage_record_naming_a_file_that_is_not_a_product_is_denied(ml: MLPipeline) -> None:
    until(ml, "split")

    def rename(st: dict[str, Any]) -> None:
        details(st)["leakage"]["splits"]["validation"]["artifact"] = "data/elsewhere.csv"

    resign(ml, "split", rename)
    for stage in ("train", "evaluate", "test"):
        getattr(ml, f"sign_{stage}")()
    failures = only(ml.verify(), Check.LEAKAGE)
    assert {f.message for f in failures} == {
        "leakage proof for 'validation' covers 'data/elsewhere.csv', "
        "but the stage's 'validation' role is 'data/split/validation.csv'",
        "leakage proof for 'validation' names 'data/elsewhere.csv', not a product",
    }


def shard(ml: MLPipeline, name: str, rows: list[str]) -> None:
    """data/split/<name>/ as two CSV shards, one gzip'd, plus a job marker."""
    directory = ml.ws / "data/split" / name
    shutil.rmtree(directory, ignore_errors=True)
    half = len(rows) // 2
    csv(directory / "part-0.csv", rows[:half])
    header = "age,bmi,sex,target\n"
    write(
        directory / "part-1.csv.gz",
        gzip.compress((header + "\n".join(rows[half:]) + "\n").encode()),
    )
    write(directory / "_SUCCESS", "")


def test_split_directories_of_csv_shards_are_read_as_rows(ml: MLPipeline) -> None:
    """The reported bypass: shard directories were hashed per file, and a leaked row passed."""
    ml.sign_objectives()
    ml.sign_validate()
    rows = (ml.ws / "data/raw.csv").read_text().splitlines()[1:]
    shard(ml, "train", rows[:18])
    shard(ml, "holdback", [*rows[24:], rows[0]])  # one training row copied into the hold-back
    csv(ml.ws / "data/split/validation.csv", rows[18:24])
    split = ml.sign(
        "split",
        materials=["data/raw.csv"],
        splits={
            "train": "data/split/train",
            "validation": "data/split/validation.csv",
            "holdback": "data/split/holdback",
        },
        parameters={"seed": 7},
    )
    record = split.statement.metadata.details["leakage"]
    assert record["splits"]["train"]["format"] == "csv"
    assert (record["splits"]["train"]["files"], record["splits"]["train"]["ignoredFiles"]) == (2, 1)
    assert record["overlaps"]["holdback|train"] == 1
    write(ml.ws / "model.bin", b"model")
    ml.sign(
        "train",
        materials=["data/split/train"],
        products=["model.bin"],
        roles={"train": "data/split/train", "model": "model.bin"},
    )
    ml.sign_evaluate()
    ml.sign_test(data="data/split/holdback")
    report = ml.verify()
    assert checks_of(report) == {Check.LEAKAGE, Check.HOLDBACK_READ}
    [failure] = [f for f in report.failures if f.check is Check.LEAKAGE]
    assert failure.message == (
        "holdback|train: 1 row(s) appear in both splits (tolerance 0) [overlap-exceeds-tolerance]"
    )
    [read] = [f for f in report.failures if f.check is Check.HOLDBACK_READ]
    assert (read.stage, read.found) == ("train", "1 hold-back row(s) in data/split/train")


# -- refusals at sign time --------------------------------------------------------
def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = info.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"part-0.csv": "a\n1\n", "notes.docx": "?"},
            r"cannot read 1 file\(s\) as rows or examples: notes.docx",
        ),
        (
            {"part-0.csv": "a\n1\n", "img.png": "png"},
            r"mixes 1 tabular shard\(s\) with 1 other data file\(s\)",
        ),
        (
            {"part-0.csv": "a\n1\n", "part-1.jsonl": '{"a": 2}\n'},
            r"shards of several formats \(csv, jsonl\)",
        ),
        ({"part-0.csv": "a\n1\n", "part-1.csv": "a,b\n1\n"}, "1 fields, the header has 2"),
        ({"_SUCCESS": ""}, "directory holds no data files"),
    ],
)
def test_sign_refuses_a_split_it_cannot_read(
    tmp_path: Path,
    keys: dict[str, KeyPair],
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    reason: str,
) -> None:
    for name, text in files.items():
        write(tmp_path / "ws/train" / name, text)
    csv(tmp_path / "ws/holdback.csv", ["1,2,F,3"])
    code, out, err = cli(
        capsys,
        "sign", "--stage", "split", "--key", keys["data-engineer"].key_path,
        "--store", tmp_path / "store", "--run-id", "r1", "--base-dir", tmp_path / "ws",
        "--split", f"train={tmp_path / 'ws/train'}", "--split", f"holdback={tmp_path / 'ws/holdback.csv'}",
        "--json",
    )  # fmt: skip
    assert code == 3, err
    doc = json.loads(out)
    assert doc["result"] == "ERROR"
    assert re.search(reason, json.dumps(doc)), doc
    assert not (tmp_path / "store/blobs").exists()  # nothing reached the store


def test_sign_stores_nothing_when_the_proof_fails(tmp_path: Path) -> None:
    from mlspec_attest.evidence.leakage import prove_splits

    write(tmp_path / "train.csv", "a\n1\n")
    write(tmp_path / "holdback.csv", "a\n1\n")
    with pytest.raises(BadInputError, match="'id' not in the file"):
        prove_splits(
            {"train": tmp_path / "train.csv", "holdback": tmp_path / "holdback.csv"},
            exclude_columns=["id"],
        )
