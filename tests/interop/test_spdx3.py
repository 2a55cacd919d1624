"""SPDX 3.0.1 (AI and Dataset profiles) export of a real signed pipeline, read back by
spdx-python-model, the SPDX project's own binding."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.cli import main as cli_main
from mlspec_attest.errors import BackendError
from mlspec_attest.interop.spdx3 import Spdx3Export, export_spdx3

from ..mlpipeline import MLPipeline
from ..support import VERIFY_NOW

spdx_python_model = pytest.importorskip("spdx_python_model")


def _export(ml: MLPipeline, out: Path | None = None) -> Spdx3Export:
    return export_spdx3(
        ml.signed, [ml.keys["owner"].public], ml.store, out=out, run_id=ml.run_id, now=VERIFY_NOW
    )


@pytest.fixture
def exported(ml: MLPipeline, tmp_path: Path) -> tuple[Path, Any]:
    """The written file, and the object set spdx-python-model reads back from it."""
    ml.run()
    out = tmp_path / "run.spdx3.json"
    assert _export(ml, out).exported
    model, objects = spdx_python_model.load(out)
    assert model.__name__.endswith("v3_0_1")
    return out, objects


def _one(objects: Any, type_name: str) -> list[Any]:
    return [o for o in objects.objects if type(o).__name__ == type_name]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_model_is_an_ai_package_with_its_digest_and_metrics(
    ml: MLPipeline, exported: tuple[Path, Any]
) -> None:
    _, objects = exported
    (model,) = _one(objects, "ai_AIPackage")
    assert model.name == "model.bin"
    assert [h.hashValue for h in model.verifiedUsing] == [_sha256(ml.ws / "model.bin")]
    metrics = {e.key: e.value for e in model.ai_metric}
    assert metrics["test:mae"] == "50.0"
    assert metrics["test:sex=F:mae"] == "48.0"
    assert metrics["evaluate:sex=M:mae"] == "51.0"
    assert {e.key: e.value for e in model.ai_hyperparameter} == {"max_depth": "4"}


def test_datasets_are_dataset_packages_with_their_file_digests(
    ml: MLPipeline, exported: tuple[Path, Any]
) -> None:
    _, objects = exported
    datasets = {d.name: d for d in _one(objects, "dataset_DatasetPackage")}
    assert set(datasets) == {
        "data/raw.csv",
        "data/split/train.csv",
        "data/split/validation.csv",
        "data/split/holdback.csv",
    }
    for name, pkg in datasets.items():
        assert [h.hashValue for h in pkg.verifiedUsing] == [_sha256(ml.ws / name)]


def test_relationships_name_training_test_data_and_evidence(
    ml: MLPipeline, exported: tuple[Path, Any]
) -> None:
    _, objects = exported
    kinds = {}
    for rel in _one(objects, "Relationship"):
        kind = str(rel.relationshipType).rsplit("/", 1)[-1]
        kinds[kind] = sorted(t.name for t in rel.to)
    assert kinds["trainedOn"] == ["data/split/train.csv"]
    assert kinds["testedOn"] == ["data/split/holdback.csv", "data/split/validation.csv"]
    evidence = {f.name: f for f in _one(objects, "software_File")}
    assert kinds["hasEvidence"] == sorted(evidence)
    for signed in ml.signed_stages.values():
        file = evidence[f"runs/{ml.run_id}/{signed.path.name}"]
        payload = hashlib.sha256(signed.bundle.envelope.payload).hexdigest()
        assert [h.hashValue for h in file.verifiedUsing] == [payload]


def test_the_document_declares_the_ai_and_dataset_profiles(exported: tuple[Path, Any]) -> None:
    out, objects = exported
    (document,) = _one(objects, "SpdxDocument")
    profiles = {str(p).rsplit("/", 1)[-1] for p in document.profileConformance}
    assert {"ai", "dataset"} <= profiles
    (model,) = _one(objects, "ai_AIPackage")
    assert list(document.rootElement) == [model]
    assert (
        json.loads(out.read_text())["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    )


def test_a_denied_run_is_not_exported(ml: MLPipeline, tmp_path: Path) -> None:
    ml.run(test={"metrics": {"metrics": {"mae": 99.0, "r2": 0.45}, "slices": {}}})
    result = _export(ml, tmp_path / "run.spdx3.json")
    assert not result.exported and not result.report.passed
    assert not (tmp_path / "run.spdx3.json").exists()


def test_without_the_library_the_extra_is_named(
    ml: MLPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "spdx_python_model", None)
    with pytest.raises(BackendError) as caught:
        _export(ml)
    assert "mlspec-attest[sbom]" in (caught.value.remedy or "")


def test_cli_exports_spdx3(
    ml: MLPipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ml.run()
    out = tmp_path / "run.spdx3.json"
    args = [
        "export",
        "spdx3",
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
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli_main.main([str(a) for a in args])
    assert info.value.code == 0
    assert json.loads(capsys.readouterr().out)["format"] == "spdx-3.0.1"
    assert spdx_python_model.load(out)[1].objects
