"""Path and file-system tricks: what the deploy artifacts are on disk, and what names say.

The attacker controls the deploy directory the gate re-hashes (symlinks, FIFOs,
devices, renamed and re-encoded file names, a directory swapped for a file) and,
as an insider, the artifact names a statement or a directory manifest records.
Scenarios that open attacker-chosen special files run under :func:`hang_guard`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.digest.artifact import digest_path
from mlspec_attest.digest.directory import MANIFEST_TYPE
from mlspec_attest.formats.jsonio import canonical

from ..support import Pipeline
from .kit import Cli, Scenario, case, expect, hang_guard, resign, scenario

M = __name__


def model(p: Pipeline) -> Path:
    return p.ws / "dist/model"


def repackage(p: Pipeline, change: Callable[[Path], Any]) -> None:
    """Re-run package honestly after ``change`` to dist/model (the old bundle removed)."""
    p.bundle_path("package").unlink()
    change(model(p))
    p.sign("package", build=False)


# ------------------------------------------------------------ symlinks, FIFOs, devices
def _symlink_outside_same_bytes(p: Pipeline) -> None:
    weights = model(p) / "weights.bin"
    weights.unlink()
    weights.symlink_to(p.ws / "model/weights.bin")  # identical bytes, outside the root


def _symlink_dev_zero(p: Pipeline) -> None:
    weights = model(p) / "weights.bin"
    weights.unlink()
    weights.symlink_to("/dev/zero")


def _symlink_to_fifo(p: Pipeline) -> None:
    os.mkfifo(model(p) / "pipe")
    weights = model(p) / "weights.bin"
    weights.unlink()
    weights.symlink_to("pipe")


def _fifo_in_model(p: Pipeline) -> None:
    os.mkfifo(model(p) / "extra.bin")


def _bad_utf8_name(p: Pipeline) -> None:
    fd = os.open(os.fsencode(model(p)) + b"/\xff\xfe.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)


def _backslash_name(p: Pipeline) -> None:
    (model(p) / "..\\..\\evil.py").write_text("print('owned')\n")


@pytest.mark.parametrize(
    ("case", "attack"),
    [
        case(
            M,
            "model-file-symlinked-outside-root",
            "replace dist/model/weights.bin by a symlink to the identical trained file outside "
            "the deploy dir (swappable after the check)",
            1,
            ["artifact-mismatch"],
            "symlink points outside",
            _symlink_outside_same_bytes,
        ),
        case(
            M,
            "model-file-symlinked-to-dev-zero",
            "replace dist/model/weights.bin by a symlink to /dev/zero",
            1,
            ["artifact-mismatch"],
            "symlink points outside",
            _symlink_dev_zero,
        ),
        case(
            M,
            "model-file-symlinked-to-fifo",
            "replace dist/model/weights.bin by a symlink to a FIFO inside the model dir",
            1,
            ["artifact-mismatch"],
            "not a regular file",
            _symlink_to_fifo,
        ),
        case(
            M,
            "fifo-inside-model-dir",
            "add a FIFO (nobody ever writes to it) to dist/model",
            1,
            ["artifact-mismatch"],
            "not a regular file",
            _fifo_in_model,
        ),
        case(
            M,
            "non-utf8-file-name-in-model",
            "add a file whose name is the bytes ff fe (not UTF-8) to dist/model",
            1,
            ["artifact-mismatch"],
            "not valid UTF-8",
            _bad_utf8_name,
        ),
        case(
            M,
            "backslash-file-name-in-model",
            r"add a file named '..\..\evil.py' (a Windows path) to dist/model",
            1,
            ["artifact-mismatch"],
            "cannot be attested",
            _backslash_name,
        ),
    ],
)
def test_deploy_dir_special_files(
    case: Scenario, attack: Callable[[Pipeline], None], hp: Pipeline, cli: Cli
) -> None:
    attack(hp)
    with hang_guard():
        expect(cli.verify(hp), case)


@pytest.mark.parametrize(
    ("case", "target"),
    [
        case(
            M,
            "fifo-as-deploy-artifact",
            "pass a FIFO as --artifact train-data",
            1,
            ["artifact-mismatch"],
            "not a regular file or directory",
            "fifo",
        ),
        case(
            M,
            "char-device-as-deploy-artifact",
            "pass /dev/zero as --artifact train-data",
            1,
            ["artifact-mismatch"],
            "not a regular file or directory",
            "/dev/zero",
        ),
        case(
            M,
            "deploy-path-name-too-long",
            "pass a path whose last component is 300 bytes long as --artifact train-data",
            1,
            ["artifact-missing"],
            "File name too long",
            "x" * 300,
        ),
    ],
)
def test_deploy_path_special(case: Scenario, target: str, hp: Pipeline, cli: Cli) -> None:
    path = Path(target) if target.startswith("/") else hp.root / target
    if target == "fifo":
        os.mkfifo(path)
    artifacts = dict(hp.deploy_artifacts(), **{"train-data": path})
    with hang_guard():
        expect(cli.verify(hp, artifacts=artifacts), case)


@scenario(
    "deploy-dir-given-through-symlink",
    "pass --artifact model=LINK where LINK is a symlink to the real dist/model",
    0,
)
def test_deploy_dir_symlink(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    link = hp.root / "model-link"
    link.symlink_to(model(hp), target_is_directory=True)
    expect(cli.verify(hp, artifacts=dict(hp.deploy_artifacts(), model=link)), case)


@scenario(
    "fifo-in-run-directory",
    "create a FIFO named package.x.sigstore.json in the run directory",
    1,
    ["attestation-malformed"],
    "not a regular file",
    note="never opened (no hang); anything in a run that is not a regular file is a failure",
)
def test_fifo_in_run_dir(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    os.mkfifo(hp.store.run_dir(hp.run_id) / "package.fifo.sigstore.json")
    with hang_guard():
        expect(cli.verify(hp), case)


# ------------------------------------------------------------ names on disk
@scenario(
    "model-file-renamed-root-unchanged",
    "rename dist/model/weights.bin to weights.bim: same bytes, same sort position, same root "
    "digest (the root does not cover names)",
    1,
    ["artifact-mismatch"],
    "added: weights.bim; removed: weights.bin",
)
def test_rename_keeps_root(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    before = digest_path(model(hp)).digest_set()
    (model(hp) / "weights.bin").rename(model(hp) / "weights.bim")
    after = digest_path(model(hp)).digest_set()
    assert before["sha256"] == after["sha256"] and before != after
    expect(cli.verify(hp), case)


@scenario(
    "model-file-case-variant",
    "rename dist/model/config.json to Config.json",
    1,
    ["artifact-mismatch"],
    "removed: config.json",
)
def test_case_variant(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    (model(hp) / "config.json").rename(model(hp) / "Config.json")
    expect(cli.verify(hp), case)


@scenario(
    "model-file-name-nfc-to-nfd",
    "package signs dist/model with 'modèle-card.txt' (NFC); the deployed copy spells it in NFD",
    1,
    ["artifact-mismatch"],
    "removed: modèle-card.txt",
)
def test_nfc_nfd(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    nfc = unicodedata.normalize("NFC", "modèle-card.txt")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    repackage(hp, lambda d: (d / nfc).write_text("card\n"))
    (model(hp) / nfc).rename(model(hp) / nfd)
    expect(cli.verify(hp), case)


@scenario(
    "hidden-file-added-to-model",
    "add dist/model/.backdoor.py after packaging (hidden files are not ignored)",
    1,
    ["artifact-mismatch"],
    "added: .backdoor.py",
)
def test_hidden_file(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    (model(hp) / ".backdoor.py").write_text("import os\n")
    expect(cli.verify(hp), case)


@scenario(
    "empty-directory-added-to-model",
    "add an empty directory to dist/model after packaging (no file, no byte: nothing to serve)",
    0,
    note="manifests list files only; an empty directory serves no byte",
)
def test_empty_dir(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    (model(hp) / "plugins").mkdir()
    expect(cli.verify(hp), case)


@scenario(
    "model-dir-replaced-by-file",
    "replace the dist/model directory by a single file holding its weights",
    1,
    ["artifact-mismatch"],
    "attested a directory, found a file",
)
def test_dir_to_file(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    weights = (model(hp) / "weights.bin").read_bytes()
    shutil.rmtree(model(hp))
    model(hp).write_bytes(weights)
    expect(cli.verify(hp), case)


@scenario(
    "train-data-file-replaced-by-dir",
    "replace data/split/train.csv by a directory holding the same file",
    1,
    ["artifact-mismatch"],
    "attested a file, found a directory",
)
def test_file_to_dir(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    csv = hp.ws / "data/split/train.csv"
    data = csv.read_bytes()
    csv.unlink()
    csv.mkdir()
    (csv / "train.csv").write_bytes(data)
    expect(cli.verify(hp), case)


# ------------------------------------------------------------ names in statements
def _rename_subject(name: str) -> Callable[[dict[str, Any]], None]:
    def mutate(statement: dict[str, Any]) -> None:
        statement["subject"][0]["name"] = name

    return mutate


@pytest.mark.parametrize(
    ("case", "name"),
    [
        case(
            M,
            "dotdot-product-name",
            "the package functionary signs its product as '../dist/model'",
            1,
            ["attestation-malformed"],
            "not a normalized relative path",
            "../dist/model",
        ),
        case(
            M,
            "absolute-product-name",
            "the package functionary signs its product as '/srv/models/dist/model'",
            1,
            ["attestation-malformed"],
            "not a normalized relative path",
            "/srv/models/dist/model",
        ),
        case(
            M,
            "dot-segment-product-name",
            "the package functionary signs its product as 'dist/./model'",
            1,
            ["attestation-malformed"],
            "not a normalized relative path",
            "dist/./model",
        ),
        case(
            M,
            "double-slash-product-name",
            "the package functionary signs its product as 'dist//model'",
            1,
            ["attestation-malformed"],
            "not a normalized relative path",
            "dist//model",
        ),
        case(
            M,
            "backslash-product-name",
            r"the package functionary signs its product as 'dist\model'",
            1,
            ["attestation-malformed"],
            "not a normalized relative path",
            "dist\\model",
        ),
    ],
)
def test_product_names(case: Scenario, name: str, hp: Pipeline, cli: Cli) -> None:
    resign(hp, "package", hp.keys["release-engineer"].signer, _rename_subject(name))
    expect(cli.verify(hp), case)


@scenario(
    "dotdot-material-name",
    "the package functionary signs its material as 'dist/../model'",
    1,
    ["attestation-malformed"],
    "not a normalized relative path",
)
def test_material_dotdot(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def mutate(statement: dict[str, Any]) -> None:
        statement["predicate"]["materials"][0]["name"] = "dist/../model"

    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@scenario(
    "homoglyph-material-name",
    "the package functionary records its material as 'mоdel' (Cyrillic о) instead of 'model'",
    1,
    ["artifact-rule"],
    "not authorized by any earlier rule",
)
def test_homoglyph_material(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def mutate(statement: dict[str, Any]) -> None:
        statement["predicate"]["materials"][0]["name"] = "m\u043edel"

    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@scenario(
    "very-long-product-name",
    "the package functionary adds a product named 'dist/' + 100,000 'a' characters",
    1,
    ["artifact-rule"],
    "not authorized by any earlier rule",
)
def test_long_name(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    def mutate(statement: dict[str, Any]) -> None:
        statement["subject"].append(
            {"name": "dist/" + "a" * 100_000, "digest": {"sha256": "0" * 64}}
        )

    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@scenario(
    "dotdot-path-in-signed-manifest",
    "the package functionary attests a directory manifest listing '../../etc/cron.d/evil'; "
    "the deploy dir differs, so the verifier reads that manifest",
    1,
    ["artifact-mismatch"],
    "stored manifest unreadable",
)
def test_manifest_dotdot(case: Scenario, hp: Pipeline, cli: Cli) -> None:
    files = [
        {
            "path": "../../etc/cron.d/evil",
            "sha256": hashlib.sha256(b"* * * * * root sh\n").hexdigest(),
            "size": 18,
        },
        {"path": "weights.bin", "sha256": "1" * 64, "size": 1},
    ]
    files.sort(key=lambda f: str(f["path"]).replace("/", "\0"))
    root = hashlib.sha256(b"".join(bytes.fromhex(str(f["sha256"])) for f in files)).hexdigest()
    doc = {"_type": MANIFEST_TYPE, "algorithm": "sha256", "files": files, "root": root}
    address = hp.store.put_blob(canonical(doc))

    def mutate(statement: dict[str, Any]) -> None:
        statement["subject"][0]["digest"] = {"sha256": root, "manifest-sha256": address}

    resign(hp, "package", hp.keys["release-engineer"].signer, mutate)
    expect(cli.verify(hp), case)


@pytest.mark.parametrize(
    ("case", "product"),
    [
        case(
            M,
            "fifo-as-signed-product",
            "`sign --product` a FIFO nobody writes to",
            3,
            None,
            "not a regular file or directory",
            "fifo",
        ),
        case(
            M,
            "char-device-as-signed-product",
            "`sign --product /dev/zero`",
            3,
            None,
            "not a regular file or directory",
            "/dev/zero",
        ),
    ],
)
def test_special_product(case: Scenario, product: str, hp: Pipeline, cli: Cli) -> None:
    path = Path(product) if product.startswith("/") else hp.ws / product
    if product == "fifo":
        os.mkfifo(path)
    key = hp.keys["release-engineer"].key_path
    args = ["sign", "--stage", "package", "--key", key, "--product", path, "--base-dir", "/"]
    args += ["--store", hp.store_path, "--run-id", hp.run_id, "--json"]
    with hang_guard():
        expect(cli(*args), case)
