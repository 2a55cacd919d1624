"""Equivalent 13-step chains for in-toto and mlspec-attest, and the CLI timings around them.

Both chains describe the same supply chain: step 1 creates a dataset directory,
steps 2-13 each read the previous step's dataset and hand it on. Each step is
signed by one ed25519 functionary key; the layout/policy is signed by an owner.

* in-toto: a legacy layout with ``MATCH dataset/* WITH PRODUCTS FROM <prev>``
  and ``DISALLOW *`` rules, and one link per step listing *every file* of the
  dataset as a material and as a product.
* mlspec-attest: a policy with the same rules over the artifact ``dataset``,
  whose attestations carry *one* manifest root per dataset (the per-file
  manifest is in the store).

``in-toto-verify`` checks layout and link signatures, expiry, thresholds and
artifact rules over every file entry. ``mlspec-attest verify`` checks policy and
attestation signatures, expiry, run id, policy binding, ordering and the same
rules over directory roots; neither re-hashes the dataset in that comparison
(mlspec-attest can, with ``--artifact``: timed separately).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench_common import timed_run

STEPS = 13
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else name


def step_name(i: int) -> str:
    return f"s{i:02d}"


# ------------------------------------------------------------------ in-toto
def build_intoto_chain(chain: Path, base: Path, dataset: str) -> list[str]:
    """Layout + 13 signed links under ``chain``; returns the in-toto-verify command."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from in_toto.models.layout import Layout, Step
    from in_toto.models.link import Link
    from in_toto.models.metadata import Metablock
    from in_toto.runlib import record_artifacts_as_dict
    from securesystemslib.signer import CryptoSigner

    chain.mkdir(parents=True, exist_ok=True)
    owner_key = ed25519.Ed25519PrivateKey.generate()
    (chain / "owner.pub").write_bytes(
        owner_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    owner = CryptoSigner(owner_key)
    functionary = CryptoSigner(ed25519.Ed25519PrivateKey.generate())
    fkey = functionary.public_key.to_dict()
    fkey["keyid"] = functionary.public_key.keyid

    layout = Layout()
    layout.set_relative_expiration(years=1)
    layout.keys = {functionary.public_key.keyid: fkey}
    for i in range(STEPS):
        step = Step(name=step_name(i))
        step.pubkeys = [functionary.public_key.keyid]
        if i == 0:
            step.expected_materials = [["DISALLOW", "*"]]
            step.expected_products = [["CREATE", f"{dataset}/*"], ["DISALLOW", "*"]]
        else:
            step.expected_materials = [
                ["MATCH", f"{dataset}/*", "WITH", "PRODUCTS", "FROM", step_name(i - 1)],
                ["DISALLOW", "*"],
            ]
            step.expected_products = [["ALLOW", f"{dataset}/*"], ["DISALLOW", "*"]]
        layout.steps.append(step)
    signed_layout = Metablock(signed=layout)
    signed_layout.create_signature(owner)
    signed_layout.dump(str(chain / "root.layout"))

    cwd = os.getcwd()
    os.chdir(base)
    try:
        artifacts = record_artifacts_as_dict([dataset])
    finally:
        os.chdir(cwd)
    links = chain / "links"
    links.mkdir(exist_ok=True)
    for i in range(STEPS):
        link = Link(
            name=step_name(i),
            materials=artifacts if i else {},
            products=artifacts,
            command=[],
            byproducts={},
            environment={},
        )
        block = Metablock(signed=link)
        block.create_signature(functionary)
        block.dump(str(links / f"{step_name(i)}.{functionary.public_key.keyid[:8]}.link"))
    return [
        tool("in-toto-verify"),
        "--layout",
        str(chain / "root.layout"),
        "--verification-keys",
        str(chain / "owner.pub"),
        "--link-dir",
        str(links),
    ]


# ------------------------------------------------------------ mlspec-attest
POLICY_HEAD = """apiVersion: mlspec-attest/v1
kind: Policy
metadata:
  name: bench-chain
  owner: bench@example.org
expires: "2099-01-01T00:00:00Z"
requirePolicyDigest: true
functionaries:
  worker:
    key: worker.pub
stages:
"""


def policy_yaml(dataset: str) -> str:
    lines = [POLICY_HEAD]
    for i in range(STEPS):
        lines.append(f"  - name: {step_name(i)}\n    kind: custom\n    functionaries: [worker]\n")
        if i == 0:
            lines.append(
                f"    materials: [DISALLOW *]\n    products: [CREATE {dataset}, DISALLOW *]\n"
            )
        else:
            prev = step_name(i - 1)
            lines.append(
                f"    after: [{prev}]\n"
                f"    materials: [MATCH {dataset} WITH PRODUCTS FROM {prev}, DISALLOW *]\n"
                f"    products: [ALLOW {dataset}, DISALLOW *]\n"
            )
    lines.append(f"deploy:\n  artifacts:\n    dataset:\n      stage: {step_name(STEPS - 1)}\n")
    lines.append(f"      product: {dataset}\n      required: false\n")
    return "".join(lines)


def mlspec(*args: str | Path) -> list[str]:
    return [tool("mlspec-attest"), *map(str, args)]


def build_mlspec_chain(
    chain: Path, base: Path, dataset: str, *, cache: Path | None = None
) -> tuple[list[str], float]:
    """Keys, signed policy and 13 attestations (signed with the CLI, timed).

    Returns the verify command and the total wall time of the 13 ``sign`` runs.
    """
    chain.mkdir(parents=True, exist_ok=True)
    for name in ("owner", "worker"):
        subprocess.run(
            mlspec("keygen", "--out", chain / name, "--force"), check=True, capture_output=True
        )
    (chain / "policy.yaml").write_text(policy_yaml(dataset))
    subprocess.run(
        mlspec("policy", "sign", chain / "policy.yaml", "--key", chain / "owner.key",
               "--out", chain / "policy.signed.json"),
        check=True, capture_output=True,
    )  # fmt: skip
    store = chain / "store"
    shutil.rmtree(store, ignore_errors=True)
    total = 0.0
    for i in range(STEPS):
        args = ["sign", "--stage", step_name(i), "--key", chain / "worker.key",
                "--store", store, "--run-id", "bench", "--base-dir", base,
                "--policy", chain / "policy.signed.json", "--product", base / dataset, "--quiet"]  # fmt: skip
        if i:
            args += ["--material", base / dataset]
        if cache is not None:
            args += ["--digest-cache", cache]
        total += timed_run(mlspec(*args), cwd=base)
    verify = mlspec(
        "verify", "--policy", chain / "policy.signed.json", "--policy-key", chain / "owner.pub",
        "--store", store, "--run-id", "bench", "--quiet",
    )  # fmt: skip
    return verify, total


def intoto_run_chain(chain: Path, base: Path, dataset: str) -> float:
    """Wall time of 13 ``in-toto-run`` invocations recording the dataset (sign side)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    chain.mkdir(parents=True, exist_ok=True)
    key = chain / "worker.pem"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = chain / "run-links"
    out.mkdir(exist_ok=True)
    total = 0.0
    for i in range(STEPS):
        args = [tool("in-toto-run"), "-n", step_name(i), "--signing-key", str(key),
                "-p", dataset, "-x", "-d", str(out)]  # fmt: skip
        if i:
            args += ["-m", dataset]
        total += timed_run(args, cwd=base)
    return total
