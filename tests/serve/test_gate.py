"""open_model / read_verified: a model opens only when its bytes are the ones the summary covers.

Real files, real hashing, real signatures; the clock is the only fake.
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest

from mlspec_attest.errors import (
    ArtifactPathError,
    BadInputError,
    ExitCode,
    GateDeniedError,
    MalformedDocumentError,
    UsageError,
)
from mlspec_attest.serve.gate import (
    VerifiedFiles,
    _Read,
    _read_all,
    binding_of,
    open_model,
    read_verified,
)
from mlspec_attest.serve.loaders import load_model
from mlspec_attest.serve.model import Predictor, ServedModel
from mlspec_attest.serve.vsa_check import check_summary

from .test_gate_support import (
    FEATURES,
    POLICY_DIGEST,
    RESOURCE_URI,
    RUN_ID,
    expectations,
    iris_rows,
    make_model_dir,
    signed,
    stranger,
    subject_digest,
    summary_for,
    trust,
    verifier,
)

TRUST = trust()
EXPECT = expectations()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model_dir(tmp_path / "iris-model")


def bundle_for(model: Path) -> bytes:
    return signed(summary_for(model))


def open_denied(model: Path, bundle: bytes, **kwargs: object) -> GateDeniedError:
    with pytest.raises(GateDeniedError) as info:
        open_model(model, bundle, TRUST, EXPECT, **kwargs)  # type: ignore[arg-type]
    assert info.value.exit_code == ExitCode.DENIED
    return info.value


def reasons(error: GateDeniedError) -> list[tuple[str, str, str]]:
    return [(r.check.value, r.expected, r.found) for r in error.reasons]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the happy path
def test_a_verified_scikit_learn_package_opens_and_predicts(model: Path) -> None:
    served = open_model(model, bundle_for(model), TRUST, EXPECT)
    assert isinstance(served, ServedModel)
    expected = pickle.loads((model / "model.pkl").read_bytes()).predict(iris_rows()).tolist()
    predictions = served.predictor.predict(iris_rows())
    assert predictions == expected == [0, 1, 2]
    assert all(type(p) is int for p in predictions)
    assert (served.name, served.version, served.features, served.format) == (
        "iris",
        "3",
        tuple(FEATURES),
        "pickle",
    )
    checked = check_summary(bundle_for(model), TRUST, EXPECT)
    assert served.binding == binding_of(checked)
    b = served.binding
    assert b.model_digest == subject_digest(model)["sha256"]
    assert b.vsa_digest == checked.digest
    assert (b.policy_digest, b.run_id, b.resource_uri) == (POLICY_DIGEST, RUN_ID, RESOURCE_URI)
    assert b.time_verified == "2026-06-01T11:00:00Z"
    assert b.verifier_id == "https://mlspec-attest.dev/verifier/v1"
    assert served.extra == {
        "entry": "model.pkl",
        "files": 3,
        "bytes": sum(p.stat().st_size for p in model.rglob("*") if p.is_file()),
        "signer": verifier().public_key.keyid,
        "card": {"owner": "ml-team"},
    }


def test_a_checked_summary_opens_the_model_without_checking_again(model: Path) -> None:
    checked = check_summary(bundle_for(model), TRUST, EXPECT)
    served = open_model(model, checked, name="iris-prod", version="7")
    assert (served.name, served.version) == ("iris-prod", "7")


def test_without_a_model_card_the_folder_and_the_digest_name_it(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "fraud-detector", card=False)
    served = open_model(model, bundle_for(model), TRUST, EXPECT)
    assert served.name == "fraud-detector"
    assert served.version == subject_digest(model)["sha256"][:12]
    assert served.features == ()


def test_a_single_file_model(tmp_path: Path, model: Path) -> None:
    single = tmp_path / "iris.pkl"
    single.write_bytes((model / "model.pkl").read_bytes())
    assert set(subject_digest(single)) == {"sha256"}
    served = open_model(single, signed(summary_for(single)), TRUST, EXPECT)
    assert served.predictor.predict(iris_rows()) == [0, 1, 2]
    assert served.extra["entry"] == "iris.pkl"
    # A directory's summary does not open the file, nor the other way round.
    error = open_denied(single, bundle_for(model))
    assert reasons(error) == [("model-digest", "a directory", "a single file")]
    assert "covers a directory, the model is a single file" in error.problems[0]
    error = open_denied(model, signed(summary_for(single)))
    assert "covers a single file, the model is a directory" in error.problems[0]


def test_the_summary_is_checked_before_the_model(model: Path) -> None:
    with pytest.raises(GateDeniedError) as info:
        open_model(model, signed(summary_for(model), stranger()), TRUST, EXPECT)
    assert [r.check.value for r in info.value.reasons] == ["signature"]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the model changed
def test_one_byte_changed_after_signing_is_refused(model: Path) -> None:
    signed_root = subject_digest(model)["sha256"]
    bundle = bundle_for(model)
    data = bytearray((model / "model.pkl").read_bytes())
    data[len(data) // 2] ^= 0x01
    (model / "model.pkl").write_bytes(bytes(data))
    error = open_denied(model, bundle)
    size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
    assert reasons(error) == [
        (
            "model-digest",
            f"sha256 {signed_root}",
            f"sha256 {subject_digest(model)['sha256']} (3 files, {size} bytes)",
        )
    ]
    assert "which files were added, removed or changed is unknown" in error.problems[0]


def test_a_file_added_is_refused(model: Path) -> None:
    bundle = bundle_for(model)
    (model / "extra.py").write_text("print('hi')\n")
    [(check, _, found)] = reasons(open_denied(model, bundle))
    assert check == "model-digest" and "(4 files," in found


def test_a_file_removed_is_refused(model: Path) -> None:
    bundle = bundle_for(model)
    (model / "docs" / "README.md").unlink()
    [(check, _, found)] = reasons(open_denied(model, bundle))
    assert check == "model-digest" and "(2 files," in found


def test_a_file_renamed_keeps_the_root_but_not_the_address(model: Path) -> None:
    bundle = bundle_for(model)
    before = subject_digest(model)
    (model / "docs" / "README.md").rename(model / "docs" / "NOTES.md")
    after = subject_digest(model)
    assert (
        after["sha256"] == before["sha256"]
        and after["manifest-sha256"] != before["manifest-sha256"]
    )
    error = open_denied(model, bundle)
    assert reasons(error) == [
        (
            "model-digest",
            f"manifest address {before['manifest-sha256']}",
            f"manifest address {after['manifest-sha256']}",
        )
    ]
    assert "renamed or moved" in error.problems[0]


def test_a_symlink_pointing_out_of_the_model_is_refused(model: Path, tmp_path: Path) -> None:
    bundle = _any_bundle(model, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the model\n")
    (model / "docs" / "link.txt").symlink_to(secret)
    error = open_denied(model, bundle)
    [(check, _, _)] = reasons(error)
    assert check == "model-files"
    assert "symlink points outside" in error.problems[0]


def _any_bundle(model: Path, tmp_path: Path) -> bytes:
    """A summary for a clean copy of the package (the gate must refuse before comparing)."""
    clean = make_model_dir(tmp_path / "clean")
    return bundle_for(clean)


def test_a_symlink_to_a_file_inside_the_model_is_read_at_its_target(model: Path) -> None:
    (model / "model-link.txt").symlink_to(model / "docs" / "README.md")
    served = open_model(model, bundle_for(model), TRUST, EXPECT)
    assert served.extra["files"] == 4


def test_a_fifo_in_the_model_is_refused_without_hanging(model: Path, tmp_path: Path) -> None:
    bundle = _any_bundle(model, tmp_path)
    os.mkfifo(model / "docs" / "pipe")
    error = open_denied(model, bundle)
    [(check, _, _)] = reasons(error)
    assert check == "model-files"
    assert "not a regular file" in error.problems[0]


def test_a_missing_model_is_bad_input(tmp_path: Path, model: Path) -> None:
    with pytest.raises(ArtifactPathError, match="model not found") as info:
        open_model(tmp_path / "nowhere", bundle_for(model), TRUST, EXPECT)
    assert info.value.exit_code == ExitCode.BAD_INPUT


# ------------------------------------------------------------------ the loader sees the hashed bytes
def test_the_loader_gets_the_hashed_bytes_never_a_path(model: Path) -> None:
    original = (model / "model.pkl").read_bytes()
    seen: list[tuple[object, str]] = []

    def swapping_loader(data: memoryview, name: str) -> Predictor:
        # Hashing is over; an attacker now swaps the file on disk before deserialization.
        (model / "model.pkl").write_bytes(pickle.dumps("a different object"))
        seen.append((data, name))
        obj = pickle.loads(data)
        assert hasattr(obj, "predict")
        return obj  # type: ignore[no-any-return]

    served = open_model(model, bundle_for(model), TRUST, EXPECT, loader=swapping_loader)
    [(data, name)] = seen
    assert isinstance(data, memoryview) and data.readonly
    assert name == "model.pkl"
    assert bytes(data) == original != (model / "model.pkl").read_bytes()
    assert served.format == "pickle"
    assert list(served.predictor.predict(iris_rows())) == [0, 1, 2]


def test_read_verified_holds_what_it_hashed(model: Path) -> None:
    files = read_verified(model, subject_digest(model))
    assert isinstance(files, VerifiedFiles)
    assert files.names == ("docs/README.md", "model-card.json", "model.pkl")
    assert (files.digest, files.address) == (
        subject_digest(model)["sha256"],
        subject_digest(model)["manifest-sha256"],
    )
    original = {n: (model / n).read_bytes() for n in files.names}
    for name in files.names:
        (model / name).write_bytes(b"swapped")
    assert {n: bytes(v) for n, v in files.files.items()} == original
    assert load_model(files.files).predictor.predict(iris_rows()) == [0, 1, 2]


def test_without_keep_nothing_is_held(model: Path) -> None:
    files = read_verified(model, subject_digest(model), keep=False)
    assert files.files == {} and files.digest == subject_digest(model)["sha256"]


# ------------------------------------------------------------------ the verified copy
def test_copy_to_writes_read_only_files_equal_to_the_verified_bytes(
    model: Path, tmp_path: Path
) -> None:
    target = tmp_path / "verified"
    served = open_model(model, bundle_for(model), TRUST, EXPECT, copy_to=target)
    assert served.extra["copy"] == str(target)
    copied = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert copied == ["docs/README.md", "model-card.json", "model.pkl"]
    for name in copied:
        assert (target / name).read_bytes() == (model / name).read_bytes()
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o400
    for folder in (target, target / "docs"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o500
    assert subject_digest(target) == subject_digest(model)
    for folder in (target, target / "docs"):
        folder.chmod(0o700)  # let pytest clean up


def test_copy_to_an_empty_existing_directory_streams_without_keeping(
    model: Path, tmp_path: Path
) -> None:
    target = tmp_path / "mount"
    target.mkdir()
    files = read_verified(model, subject_digest(model), copy_to=target, keep=False)
    assert files.copy == target and files.files == {}
    assert (target / "model.pkl").read_bytes() == (model / "model.pkl").read_bytes()
    assert not [p for p in target.iterdir() if p.name.startswith(".mlspec-gate-")]
    for folder in (target, target / "docs"):
        folder.chmod(0o700)


def test_a_denied_model_leaves_no_copy(model: Path, tmp_path: Path) -> None:
    bundle = bundle_for(model)
    (model / "model.pkl").write_bytes(b"tampered")
    for target, created in ((tmp_path / "new", False), (tmp_path / "empty", True)):
        if created:
            target.mkdir()
        open_denied(model, bundle, copy_to=target)
        assert target.exists() == created
        assert not created or list(target.iterdir()) == []


def test_copy_to_must_be_new_or_empty_and_outside_the_model(model: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "old.pkl").write_bytes(b"old")
    with pytest.raises(UsageError, match="exists and is not an empty directory"):
        read_verified(model, subject_digest(model), copy_to=busy)
    with pytest.raises(UsageError, match="cannot be written inside the model"):
        read_verified(model, subject_digest(model), copy_to=model / "copy")


# ------------------------------------------------------------------ bounds and the card
def test_the_total_size_and_the_number_of_files_are_bounded(model: Path) -> None:
    with pytest.raises(BadInputError, match="the limit for a model the gate reads") as info:
        read_verified(model, subject_digest(model), max_bytes=100)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(BadInputError, match="3 files, more than 2, the limit for a model"):
        read_verified(model, subject_digest(model), max_files=2)


def test_a_malformed_model_card_is_bad_input(model: Path) -> None:
    (model / "model-card.json").write_text('{"name": "iris", "name": "other"}')
    with pytest.raises(MalformedDocumentError, match="duplicate key"):
        open_model(model, bundle_for(model), TRUST, EXPECT)
    (model / "model-card.json").write_text('{"features": "petal_length"}')
    with pytest.raises(BadInputError, match="features must be a list"):
        open_model(model, bundle_for(model), TRUST, EXPECT)


# ------------------------------------------------------------------ swapped in after the walk
# The walk saw regular files; by the open, another kind of entry is there. Opening once
# (O_NOFOLLOW, non-blocking) and fstat on the descriptor catch it, and nothing hangs.
def refused_at_open(path: Path | str, root: Path | str) -> str:
    with pytest.raises(GateDeniedError) as info:
        _read_all([_Read("entry", str(path))], str(root), 1 << 20, True, None)
    [(check, _, _)] = reasons(info.value)
    assert check == "model-files"
    return info.value.problems[0]


def test_a_fifo_swapped_in_after_the_walk_does_not_hang(model: Path) -> None:
    os.mkfifo(model / "pipe")  # nobody writes to it: a blocking open would wait for ever
    assert "entry: not a regular file" in refused_at_open(model / "pipe", model)


def test_a_device_swapped_in_after_the_walk_is_refused() -> None:
    assert "entry: not a regular file" in refused_at_open("/dev/zero", "/dev")


def test_a_link_out_swapped_in_after_the_walk_is_refused(model: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("secret\n")
    (model / "docs" / "README.md").unlink()
    (model / "docs" / "README.md").symlink_to(tmp_path / "secret")
    problem = refused_at_open(model / "docs" / "README.md", model)
    assert "entry: link points outside the model" in problem


def test_a_file_that_changes_length_while_read_is_refused() -> None:
    # /proc files say 0 bytes and read on, as a file still being written does.
    status = f"/proc/{os.getpid()}/status"  # not /proc/self: a link, never followed
    assert "changed length while the gate read it" in refused_at_open(status, "/proc")
