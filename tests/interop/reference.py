"""Interop fixtures made at test time by the reference tools in the test dependencies.

Every document here is produced by the reference implementation itself, in a temporary
folder, once per session (the fixtures are in ``tests/conftest.py``):

* in-toto 3.1 / securesystemslib: the classic demo supply chain (alice's layout template,
  bob's ``write-code`` and carl's ``package`` links, Metablock and DSSE), the PEM key
  formats in-toto reads, and the ``dir:`` hash of a tree (``DirectoryResolver``);
* model-signing (the pinned test dependency): the key and certificate signatures of the
  current release, with a CA chain made here, and the manifests and in-toto payloads of
  the reference test models (what model-transparency keeps as golden files).

What cannot be made offline (signatures of older model-signing releases, bundles signed
by the public Sigstore instances, the sigstore-conformance vectors, the trust roots) is
committed under ``tests/assets/`` instead; see ``tests/assets/README.md``.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import json
import locale
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..support import asset


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy fixtures to a writable folder (the sources may be read-only)."""
    shutil.copytree(src, dst, symlinks=True)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            p = Path(root) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ============================================================================ in-toto


@dataclass(frozen=True)
class IntotoDemo:
    """The in-toto demo made by in-toto: keys, an unsigned layout template, two links.

    ``files``: ``alice``/``bob``/``carl`` (RSA-3072, PKCS#1 PEM) with SPKI ``.pub``,
    ``danny`` (a legacy securesystemslib JSON ed25519 key), ``foo.tar.gz``,
    ``demo.layout.template`` (unsigned Metablock, no ``expires``) and the links
    ``write-code.<bob>.link`` and ``package.<carl>.link`` (Metablocks).
    ``dsse``: the same template and links as DSSE envelopes.
    """

    root: Path
    files: Path
    dsse: Path
    bob: str  # keyids, as in-toto computes them
    carl: str

    @property
    def write_code_link(self) -> str:
        return f"write-code.{self.bob[:8]}.link"

    @property
    def package_link(self) -> str:
        return f"package.{self.carl[:8]}.link"

    @property
    def links(self) -> tuple[str, str]:
        return (self.write_code_link, self.package_link)


def _pkcs1(signer: Any) -> bytes:
    """The private key as a traditional ``RSA PRIVATE KEY`` PEM, as in-toto's demo keys are."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(signer.private_bytes, None)
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _public_pem(signer: Any) -> bytes:
    """The public key as an SPKI PEM (securesystemslib keeps ed25519 public keys as hex)."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(signer.private_bytes, None)
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _legacy_json_key(signer: Any) -> tuple[bytes, bytes]:
    """An ed25519 key in the legacy securesystemslib JSON format (in-toto's ``danny``)."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(signer.private_bytes, None)
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = signer.public_key.to_dict()
    public["keyid_hash_algorithms"] = ["sha256", "sha512"]
    private_doc = {
        "keyid": signer.public_key.keyid,
        **public,
        "keyval": {**public["keyval"], "private": raw.hex()},
    }
    return json.dumps(private_doc).encode(), json.dumps(public).encode()


def _layout_key(signer: Any) -> dict[str, Any]:
    return {"keyid": signer.public_key.keyid, **signer.public_key.to_dict()}


def build_intoto_demo(root: Path) -> IntotoDemo:
    """Run the in-toto demo with in-toto's own API (``in_toto_run``, ``Layout``, ``Envelope``)."""
    from in_toto.models.layout import Inspection, Layout, Step
    from in_toto.models.metadata import Envelope, Metablock
    from in_toto.runlib import in_toto_run
    from securesystemslib.signer import CryptoSigner

    files, dsse = root / "demo_files", root / "demo_dsse_files"
    files.mkdir(parents=True)
    dsse.mkdir()
    signers = {name: CryptoSigner.generate_rsa() for name in ("alice", "bob", "carl")}
    for name, signer in signers.items():
        _write(files / name, _pkcs1(signer))
        _write(files / f"{name}.pub", _public_pem(signer))
    danny, danny_pub = _legacy_json_key(CryptoSigner.generate_ed25519())
    _write(files / "danny", danny)
    _write(files / "danny.pub", danny_pub)

    # bob writes foo.py; carl packages it with tar (in-toto runs the command).
    work = root / "work"
    _write(work / "foo.py", b"print('hello')\n")
    with contextlib.chdir(work):
        write_code = in_toto_run(
            "write-code", [], ["foo.py"], [], signer=signers["bob"], metadata_directory=str(files)
        )
        package = in_toto_run(
            "package",
            ["foo.py"],
            ["foo.tar.gz"],
            ["tar", "zcvf", "foo.tar.gz", "foo.py"],
            signer=signers["carl"],
            metadata_directory=str(files),
        )
    shutil.copyfile(work / "foo.tar.gz", files / "foo.tar.gz")
    shutil.rmtree(work)
    # The same two links as DSSE envelopes (same artifacts, so one foo.tar.gz serves both).
    for metablock, who in ((write_code, "bob"), (package, "carl")):
        envelope = Envelope.from_signable(metablock.signed)
        signature = envelope.create_signature(signers[who])
        envelope.dump(str(dsse / f"{metablock.signed.name}.{signature.keyid[:8]}.link"))

    bob, carl = signers["bob"].public_key.keyid, signers["carl"].public_key.keyid
    layout = Layout(
        keys={bob: _layout_key(signers["bob"]), carl: _layout_key(signers["carl"])},
        steps=[
            Step(
                name="write-code",
                expected_products=[["CREATE", "foo.py"]],
                pubkeys=[bob],
                threshold=1,
            ),
            Step(
                name="package",
                expected_command=["tar", "zcvf", "foo.tar.gz", "foo.py"],
                expected_materials=[["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"]],
                expected_products=[["CREATE", "foo.tar.gz"], ["ALLOW", "foo.py"]],
                pubkeys=[carl],
                threshold=1,
            ),
        ],
        inspect=[
            Inspection(
                name="untar",
                run=["tar", "xfz", "foo.tar.gz"],
                expected_materials=[["MATCH", "foo.tar.gz", "WITH", "PRODUCTS", "FROM", "package"]],
                expected_products=[["MATCH", "foo.py", "WITH", "PRODUCTS", "FROM", "write-code"]],
            )
        ],
    )
    # A template, as in the demo: unsigned, and without ``expires`` (the signer sets it).
    template = Metablock(signed=layout).to_dict()
    del template["signed"]["expires"]
    _write(files / "demo.layout.template", json.dumps(template, indent=1).encode())
    wrapped = Envelope.from_signable(layout).to_dict()
    payload = json.loads(base64.b64decode(wrapped["payload"]))
    del payload["expires"]
    wrapped["payload"] = base64.b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    _write(dsse / "demo.layout.template", json.dumps(wrapped, indent=1).encode())
    return IntotoDemo(root, files, dsse, bob, carl)


def build_intoto_pems(root: Path) -> Path:
    """rsa (2048), ecdsa (P-256) and ed25519 key pairs made by securesystemslib, written as
    in-toto's test keys are: PKCS#8 private (plain, and encrypted with ``hunter2``), SPKI public."""
    from cryptography.hazmat.primitives import serialization
    from securesystemslib.signer import CryptoSigner

    root.mkdir(parents=True)
    made = {
        "rsa": CryptoSigner.generate_rsa(size=2048),
        "ecdsa": CryptoSigner.generate_ecdsa(),
        "ed25519": CryptoSigner.generate_ed25519(),
    }
    for name, signer in made.items():
        _write(root / f"{name}_public.pem", _public_pem(signer))
        _write(root / f"{name}_private_unencrypted.pem", signer.private_bytes)
        private = serialization.load_pem_private_key(signer.private_bytes, None)
        encrypted = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"hunter2"),
        )
        _write(root / f"{name}_private_encrypted.pem", encrypted)
    return root


@contextlib.contextmanager
def _locale_kept() -> Iterator[None]:
    """in-toto's DirectoryResolver sets LC_ALL=C for its sort; give the process its locale back."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


@dataclass(frozen=True)
class DirTree:
    """A tree and its in-toto ``dir:`` sha256, as in-toto's DirectoryResolver computes it."""

    path: Path
    digest: str
    digest_without_readme: str


def build_dir_tree(root: Path) -> DirTree:
    """A tree like in-toto's ``dir_resolver`` test data (names whose C-locale order differs
    from a case-insensitive one), hashed by in-toto itself, with and without README.md."""
    from in_toto.resolver import DirectoryResolver

    tree = root / "dir_resolver"
    _write(tree / "README.md", b"# README\n\nTest data for the dir: resolver.\n")
    for name in ("0", "1", "a", "b", "Y", "Z"):
        _write(tree / "subdir" / f"{name}.txt", name.encode())
    uri = f"dir:{tree}"
    with _locale_kept():
        full = DirectoryResolver().hash_artifacts([uri])
        partial = DirectoryResolver(exclude_patterns=["README.md"]).hash_artifacts([uri])
    return DirTree(tree, full[uri]["sha256"], partial[uri]["sha256"])


# ====================================================================== model-signing

#: The model-signing release installed for the tests (the reference that signs below).
try:
    OMS_VERSION = "v" + importlib.metadata.version("model-signing")
except importlib.metadata.PackageNotFoundError:  # the fixtures that need it will say so
    OMS_VERSION = "v-not-installed"
OMS_KEY_FIXTURE = f"{OMS_VERSION}-elliptic-key"
OMS_CERTIFICATE_FIXTURE = f"{OMS_VERSION}-certificate"


@dataclass(frozen=True)
class OmsFixtures:
    """``cli-fixtures/``: the older releases' signatures (copied from ``tests/assets``) and the
    current release's key and certificate signatures, made here by model-signing.

    ``published``: the public test key and CA chain the older releases signed with
    (``signing-key-pub.pem``, ``ca-cert.pem``, ``int-ca-cert.pem``).
    ``generated``: the same file names for keys made here: ``signing-key.pem`` (ECDSA P-384),
    ``signing-key-pub.pem``, ``signing-key-cert.pem`` (leaf), ``int-ca-cert.pem``, ``ca-cert.pem``.
    """

    root: Path
    published: Path
    generated: Path

    def keys_for(self, fixture: str) -> Path:
        return self.generated if fixture.startswith(OMS_VERSION + "-") else self.published


def _cert(
    subject: str,
    key: Any,
    issuer: tuple[Any, Any] | None,
    *,
    ca: bool,
) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    usage = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA384())


def make_oms_keys(folder: Path) -> Path:
    """An ECDSA P-384 signing key and a root -> intermediate -> leaf chain, written with the
    file names model-signing's own test keys use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = serialization.Encoding.PEM
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _cert("root-ca", root_key, None, ca=True)
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = _cert("intermediate-ca", inter_key, (root, root_key), ca=True)
    key = ec.generate_private_key(ec.SECP384R1())
    leaf = _cert("model-signer", key, (inter, inter_key), ca=False)
    _write(
        folder / "signing-key.pem",
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    _write(
        folder / "signing-key-pub.pem",
        key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    _write(folder / "signing-key-cert.pem", leaf.public_bytes(pem))
    _write(folder / "int-ca-cert.pem", inter.public_bytes(pem))
    _write(folder / "ca-cert.pem", root.public_bytes(pem))
    return folder


def _oms_sign(model: Path, configure: Any) -> None:
    """Sign ``model`` into ``model/model.sig`` as ``model_signing sign … --ignore-paths
    ignore-me`` does: the signature file and ignore-me left out, git paths ignored."""
    from model_signing import hashing, signing

    hashing_config = hashing.Config().set_ignored_paths(
        paths=["ignore-me", "model.sig"], ignore_git_paths=True
    )
    config = configure(signing.Config()).set_hashing_config(hashing_config)
    config.sign(model, model / "model.sig")


def build_oms_fixtures(root: Path) -> OmsFixtures:
    cli = copy_tree(asset("model-signing/cli-fixtures"), root / "cli-fixtures")
    published = cli / "keys" / "certificate"
    generated = make_oms_keys(cli / "keys" / "generated")
    # The files of the older releases' folders: signme-1 differs by a newline in key fixtures.
    for fixture, first in (
        (OMS_KEY_FIXTURE, b"signme-1\n"),
        (OMS_CERTIFICATE_FIXTURE, b"signme-1"),
    ):
        model = cli / fixture
        _write(model / "signme-1", first)
        _write(model / "signme-2", b"signme-2")
        _write(model / "ignore-me", b"")
    _oms_sign(
        cli / OMS_KEY_FIXTURE,
        lambda c: c.use_elliptic_key_signer(private_key=generated / "signing-key.pem"),
    )
    _oms_sign(
        cli / OMS_CERTIFICATE_FIXTURE,
        lambda c: c.use_certificate_signer(
            private_key=generated / "signing-key.pem",
            signing_certificate=generated / "signing-key-cert.pem",
            certificate_chain=[generated / "int-ca-cert.pem"],
        ),
    )
    return OmsFixtures(cli, published, generated)


# --- the reference test models and their golden manifests / payloads ---------------------------

#: folder name -> (model path inside it, files: relative path -> content). The shapes of
#: model-transparency's test models (tests/conftest.py there): one file, an empty file, an
#: empty folder, a folder with an empty file, a two-level folder, a deep folder.
OMS_MODELS: dict[str, tuple[str, dict[str, bytes]]] = {
    "sample_model_file": ("file_model", {"": b"This is a simple model"}),
    "empty_model_file": ("empty_file_model", {"": b""}),
    "empty_model_folder": ("empty_folder_model", {}),
    "model_folder_with_empty_file": ("empty_file_inside_model", {"empty_file": b""}),
    "sample_model_folder": (
        "sample_model",
        {
            **{f"f{i}": f"This is file f{i} in root.".encode() for i in range(4)},
            **{
                f"d{d}/f{d}{i}": f"This is file f{d}{i} in d{d}.".encode()
                for d in range(2)
                for i in range(3)
            },
        },
    ),
    "deep_model_folder": (
        "deep_model",
        {f"d0/d1/d2/d3/d4/f{i}": f"This is file f{i}.".encode() for i in range(4)},
    ),
}
#: every model of the reference's golden tests, the symlink model included
OMS_GOLDEN_MODELS = {
    **{k: v[0] for k, v in OMS_MODELS.items()},
    "symlink_model_folder": "symlink_model",
}


def build_oms_models(root: Path) -> Path:
    """``root/<folder>/<model>`` for every reference test model; the symlink model is a folder
    holding ``symlink_file``, a link to a file outside it with the sample file's content."""
    for folder, (model, files) in OMS_MODELS.items():
        path = root / folder / model
        if not files:
            path.mkdir(parents=True)
        for name, data in files.items():
            _write(path / name if name else path, data)
    outside = _write(root / "external" / "file", OMS_MODELS["sample_model_file"][1][""])
    link_dir = root / "symlink_model_folder" / "symlink_model"
    link_dir.mkdir(parents=True)
    (link_dir / "symlink_file").symlink_to(outside)
    return root


def build_oms_golden(root: Path) -> Path:
    """What model-transparency's golden tests record, made by the installed model-signing:

    ``golden-models/<folder>/<model>``; ``golden-manifests/file/TestSerializer/<folder>`` and
    ``golden-manifests/file_shard/TestSerializer/<folder>[_small_shards]`` (``identifier:digest``
    lines in the manifest's order); ``golden-payloads/signing-TestPayload/<folder><suffix>``
    (the in-toto Statement as protobuf JSON, ``suffix`` "", "_shard" or "_small_shards").
    Serializers as in those tests: sha256, symlinks allowed, shards of 1 GB or 8 bytes.

    The payloads are equal to model-transparency's committed goldens as JSON data, not as
    text: protobuf 5+ writes a ``Struct``'s keys (the ``serialization`` object) in an order
    that changes from one process to the next. The committed bytes are in ``tests/assets``.
    """
    from google.protobuf import json_format
    from model_signing._hashing import io, memory
    from model_signing._serialization import file, file_shard
    from model_signing._signing.signing import Payload

    models = build_oms_models(root / "golden-models")

    def files_serializer() -> Any:
        return file.Serializer(
            lambda p: io.SimpleFileHasher(p, memory.SHA256()), allow_symlinks=True
        )

    def shard_serializer(size: int) -> Any:
        return file_shard.Serializer(
            lambda p, start, end: io.ShardedFileHasher(
                p, memory.SHA256(), start=start, end=end, shard_size=size
            ),
            allow_symlinks=True,
        )

    serializers = {
        "": ("file", files_serializer()),
        "_shard": ("file_shard", shard_serializer(1_000_000_000)),
        "_small_shards": ("file_shard", shard_serializer(8)),
    }
    for folder, model in OMS_GOLDEN_MODELS.items():
        for suffix, (kind, serializer) in serializers.items():
            manifest = serializer.serialize(models / folder / model)
            lines = [
                f"{item.identifier}:{item.digest.digest_hex}"
                for item in manifest.resource_descriptors()  # sorted by (path, shard start)
            ]
            name = folder + ("_small_shards" if suffix == "_small_shards" else "")
            _write(
                root / "golden-manifests" / kind / "TestSerializer" / name,
                "".join(line + "\n" for line in lines).encode(),
            )
            statement = json_format.MessageToJson(Payload(manifest).statement.pb)
            _write(
                root / "golden-payloads" / "signing-TestPayload" / (folder + suffix),
                (statement + "\n").encode(),
            )
    return root
