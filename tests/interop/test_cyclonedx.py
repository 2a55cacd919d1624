"""CycloneDX 1.6 ML-BOM export of a real signed pipeline, validated by cyclonedx-python-lib."""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.errors import BackendError
from mlspec_attest.interop import cyclonedx
from mlspec_attest.interop.cyclonedx import export_cyclonedx

from ..mlpipeline import MLPipeline
from ..support import VERIFY_NOW, Pipeline

pytest.importorskip("cyclonedx")
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def _export(ml: MLPipeline, out: Path | None = None) -> cyclonedx.CycloneDXExport:
    return export_cyclonedx(
        ml.signed, [ml.keys["owner"].public], ml.store, out=out, run_id=ml.run_id, now=VERIFY_NOW
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _props(element: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in element.get("properties", []):
        out.setdefault(p["name"], []).append(p["value"])
    return out


@pytest.fixture
def bom(ml: MLPipeline, tmp_path: Path) -> dict[str, Any]:
    ml.run()
    result = _export(ml, tmp_path / "bom.cdx.json")
    assert result.exported and result.document is not None
    assert json.loads((tmp_path / "bom.cdx.json").read_text()) == result.document
    return result.document


def test_the_document_is_valid_cyclonedx_1_6(bom: dict[str, Any]) -> None:
    assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    assert validator.validate_str(json.dumps(bom)) is None


def test_the_model_is_the_trained_product_with_its_digest(
    ml: MLPipeline, bom: dict[str, Any]
) -> None:
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "model.bin"
    assert model["hashes"] == [{"alg": "SHA-256", "content": _sha256(ml.ws / "model.bin")}]
    assert _props(model)["mlspec:stage"] == ["train"]
    assert _props(model["modelCard"])["mlspec:parameter:max_depth"] == ["4"]


def test_the_model_card_has_the_attested_metrics_per_slice(bom: dict[str, Any]) -> None:
    metrics = bom["metadata"]["component"]["modelCard"]["quantitativeAnalysis"][
        "performanceMetrics"
    ]
    by_slice = {(m["slice"], m["type"]): m["value"] for m in metrics}
    assert by_slice[("stage=test", "mae")] == "50"
    assert by_slice[("stage=test", "r2")] == "0.45"
    assert by_slice[("stage=test, sex=F, n=60", "mae")] == "48"
    assert by_slice[("stage=test, sex=X, n=3", "mae")] == "95"
    assert by_slice[("stage=evaluate, sex=M, n=38", "mae")] == "51"
    assert by_slice[("stage=evaluate", "baseline_mae")] == "70"
    # only the evaluation and test stages describe performance
    assert {s.split(",")[0] for s, _ in by_slice} == {"stage=evaluate", "stage=test"}


def test_datasets_are_data_components_with_their_file_digests(
    ml: MLPipeline, bom: dict[str, Any]
) -> None:
    data = {c["name"]: c for c in bom["components"] if c["type"] == "data"}
    assert set(data) == {
        "data/raw.csv",
        "data/split/train.csv",
        "data/split/validation.csv",
        "data/split/holdback.csv",
    }
    for name, component in data.items():
        assert component["hashes"] == [{"alg": "SHA-256", "content": _sha256(ml.ws / name)}]
        assert component["data"][0]["type"] == "dataset"
    assert _props(data["data/split/holdback.csv"])["mlspec:role"] == ["holdback"]
    assert _props(data["data/split/train.csv"])["mlspec:rows"] == ["18"]
    card = bom["metadata"]["component"]["modelCard"]["modelParameters"]["datasets"]
    assert sorted(d["ref"] for d in card) == sorted(c["bom-ref"] for c in data.values())
    depends = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert sorted(depends["model"]) == sorted(c["bom-ref"] for c in data.values())


def test_the_formulation_is_the_run_stage_by_stage(ml: MLPipeline, bom: dict[str, Any]) -> None:
    (workflow,) = bom["formulation"][0]["workflows"]
    assert workflow["uid"] == ml.run_id
    tasks = {t["name"]: t for t in workflow["tasks"]}
    assert list(tasks) == ["objectives", "validate", "split", "train", "evaluate", "test"]
    assert tasks["train"]["taskTypes"] == ["build"] and tasks["test"]["taskTypes"] == ["test"]
    train_inputs = [i for i in tasks["train"]["inputs"] if "resource" in i]
    assert [i["resource"] for i in train_inputs] == [{"ref": "dataset-3:data/split/train.csv"}]
    assert tasks["train"]["outputs"] == [{"resource": {"ref": "model"}}]
    depends = {d["ref"]: d["dependsOn"] for d in workflow["taskDependencies"]}
    assert depends["task:test"] == ["task:train"] and depends["task:objectives"] == []
    attested = ml.signed_stages["train"].bundle.envelope.payload
    digest = hashlib.sha256(attested).hexdigest()
    assert _props(tasks["train"])["mlspec:attestation"] == [f"sha256:{digest}"]


def test_every_counted_attestation_is_named_by_payload_digest(
    ml: MLPipeline, bom: dict[str, Any]
) -> None:
    refs = {r["url"]: r for r in bom["externalReferences"]}
    assert len(refs) == len(ml.signed_stages) == 6
    for signed in ml.signed_stages.values():
        ref = refs[f"runs/{ml.run_id}/{signed.path.name}"]
        assert ref["type"] == "attestation"
        payload = hashlib.sha256(signed.bundle.envelope.payload).hexdigest()
        assert ref["hashes"] == [{"alg": "SHA-256", "content": payload}]
    props = _props(bom["metadata"])
    assert props["mlspec:policy-digest"] == [ml.signed.digest]
    assert props["mlspec:verification-result"] == ["PASSED"]


def test_the_same_run_exports_the_same_document(ml: MLPipeline) -> None:
    ml.run()
    first, second = _export(ml).document, _export(ml).document
    assert first is not None and first == second


def test_a_denied_run_is_not_exported(ml: MLPipeline, tmp_path: Path) -> None:
    ml.run(test={"metrics": {"metrics": {"mae": 99.0, "r2": 0.45}, "slices": {}}})
    result = _export(ml, tmp_path / "bom.json")
    assert not result.exported and not result.report.passed
    assert not (tmp_path / "bom.json").exists()


def test_a_deployed_directory_model_carries_its_manifest_digest(honest: Pipeline) -> None:
    result = export_cyclonedx(
        honest.signed,
        [honest.keys["owner"].public],
        honest.store,
        run_id=honest.run_id,
        artifacts=honest.deploy_artifacts(),
        now=VERIFY_NOW,
    )
    assert result.document is not None, [str(f) for f in result.report.failures]
    model = result.document["metadata"]["component"]
    package = next(s for s in result.report.artifacts if s.role == "model")
    assert model["name"] == "dist/model"
    assert model["hashes"][0]["content"] == package.digest["sha256"]
    assert _props(model)["mlspec:digest:manifest-sha256"] == [package.digest["manifest-sha256"]]


def test_what_the_library_does_not_model_is_validated_too(bom: dict[str, Any]) -> None:
    """The model card and formulation are added to the library's output: the library's
    validator must still judge them (a wrong field there is refused, not written)."""
    lib = cyclonedx._cyclonedx()
    broken = copy.deepcopy(bom)
    broken["formulation"][0]["workflows"][0]["taskTypes"] = ["train"]  # not a taskType
    with pytest.raises(RuntimeError, match=r"not valid CycloneDX 1\.6"):
        cyclonedx._validate(broken, lib)
    broken = copy.deepcopy(bom)
    broken["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]["score"] = 1
    with pytest.raises(RuntimeError, match=r"not valid CycloneDX 1\.6"):
        cyclonedx._validate(broken, lib)


def test_without_the_library_the_extra_is_named(
    ml: MLPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cyclonedx", None)  # what an absent package looks like
    with pytest.raises(BackendError) as caught:
        _export(ml)
    assert "mlspec-attest[sbom]" in (caught.value.remedy or "")


# ------------------------------------------------------------------ the CLI
@dataclass
class Run:
    code: int
    out: str


def _cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Run:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli_main.main([str(a) for a in args])
    code = info.value.code
    return Run(code if isinstance(code, int) else 1, capsys.readouterr().out)


def _args(ml: MLPipeline, out: Path) -> list[str | Path]:
    return [
        "export",
        "cyclonedx",
        "--policy",
        ml.signed_policy_path,
        "--policy-key",
        ml.keys["owner"].pub_path,
        "--store",
        ml.store_path,
        "--run-id",
        ml.run_id,
        "--out",
        out,
        "--json",
    ]


def test_cli_exports_and_reports_json(
    ml: MLPipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml.run()
    run = _cli(capsys, *_args(ml, tmp_path / "bom.json"))
    assert run.code == 0, run.out
    doc = json.loads(run.out)
    assert doc["result"] == "EXPORTED" and doc["format"] == "cyclonedx-1.6"
    written = json.loads((tmp_path / "bom.json").read_text())
    assert written["metadata"]["component"]["type"] == "machine-learning-model"


def test_cli_denied_run_exits_1_with_the_report(
    ml: MLPipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml.run(test={"metrics": {"metrics": {"mae": 99.0, "r2": 0.45}, "slices": {}}})
    run = _cli(capsys, *_args(ml, tmp_path / "bom.json"))
    assert run.code == 1
    assert json.loads(run.out)["result"] == "FAILED"
    assert not (tmp_path / "bom.json").exists()
