"""``mlspec-attest policy init|lint|show|sign``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from mlspec_attest.cli.options import (
    FILE,
    file_option,
    json_option,
    passphrase_env_option,
    passphrase_from_env,
)
from mlspec_attest.cli.policy_html import policy_html
from mlspec_attest.cli.policy_test import test_policy
from mlspec_attest.cli.policy_verify import verify_policy
from mlspec_attest.cli.render import policy_mermaid, policy_text
from mlspec_attest.errors import ExitCode, PolicyError
from mlspec_attest.formats.fsutil import atomic_write
from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.printable import printable
from mlspec_attest.policy.load import lint_policy_text, load_policy_yaml, read_policy_any
from mlspec_attest.policy.problems import expiry_problems
from mlspec_attest.policy.signed import sign_policy
from mlspec_attest.policy.source import read_policy_text
from mlspec_attest.policy.templates import template_text
from mlspec_attest.signing.keys import load_private_key


@click.group()
def policy() -> None:
    """Write, lint, show and sign pipeline policies (the layout).

    \b
    Typical flow:
      mlspec-attest policy init --template lifecycle > policy.yaml
      mlspec-attest policy lint policy.yaml
      mlspec-attest policy sign policy.yaml --key owner.key --out policy.signed.json
    """


@policy.command("init")
@click.option(
    "--template",
    type=click.Choice(["lifecycle", "minimal"]),
    default="lifecycle",
    show_default=True,
)
def init(template: str) -> None:
    """Print a commented policy template to stdout."""
    click.echo(template_text(template), nl=False)


@policy.command("lint")
@click.argument("file", type=FILE)
@json_option("Print problems as JSON.")
def lint(file: Path, as_json: bool) -> None:
    """Report every problem in a YAML policy, with line numbers, in one run.

    Schema and semantic problems are reported together; stages are counted from 1
    and named (stage 3 (train)). An expired policy is an error, one expiring within
    30 days a warning. Exit 0 if there are no errors (warnings are printed), 3 otherwise.
    """
    text = read_policy_text(file)
    policy_obj, problems = lint_policy_text(text, source=str(file), base_dir=file.parent)
    errors = [p for p in problems if p.severity == "error"]
    if as_json:
        doc = {
            "schemaVersion": "https://mlspec-attest.dev/policy-lint/v1",
            "file": str(file),
            "valid": policy_obj is not None and not errors,
            "problems": [
                {
                    "line": p.line,
                    "path": p.path,
                    "where": p.place,
                    "severity": p.severity,
                    "message": p.message,
                }
                for p in problems
            ],
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        for p in problems:  # messages quote the policy's names and values
            field = f"{p.place}: " if p.place else ""
            click.echo(
                printable(f"{file}:{p.line or 1}: {p.severity}: {field}{p.message}"), err=True
            )
        if not errors:
            stages = len(policy_obj.stages) if policy_obj else 0
            click.echo(
                printable(f"{file}: ok ({stages} stages, {len(problems)} warning(s))"), err=True
            )
    if errors or policy_obj is None:
        raise SystemExit(ExitCode.BAD_INPUT)


@policy.command("show")
@click.argument("file", type=FILE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "html"]),
    default="text",
    show_default=True,
    help="html: one self-contained page (the required graph, signers, rules; docs/report.md).",
)
def show(file: Path, fmt: str) -> None:
    """Show stages in order, their signers and rules (YAML or signed policy; no trust decision)."""
    policy_obj, digest = read_policy_any(file)
    if fmt == "html":
        click.echo(policy_html(policy_obj, digest), nl=False)
        return
    click.echo(policy_mermaid(policy_obj) if fmt == "mermaid" else policy_text(policy_obj, digest))


@policy.command("sign")
@click.argument("file", type=FILE)
@file_option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    help="Owner private key (repeat for several owners).",
)
@file_option("--out", required=True, help="Where to write the signed policy (DSSE JSON).")
@passphrase_env_option("Env var holding the owner key passphrase.")
def sign_cmd(file: Path, keys: tuple[Path, ...], out: Path, passphrase_env: str | None) -> None:
    """Sign a YAML policy; functionary keys are embedded so the result is self-contained.

    An expired policy is refused (verification would always deny it).
    """
    policy_obj = load_policy_yaml(file)
    for problem in expiry_problems(policy_obj.expires, datetime.now(UTC)):
        if problem.severity == "error":
            raise PolicyError(f"{file}: not signed: {problem.message}")
        click.echo(printable(f"warning: {file}: {problem.message}"), err=True)
    passphrase = passphrase_from_env(passphrase_env)
    signers = [load_private_key(k, passphrase=passphrase) for k in keys]
    envelope = sign_policy(policy_obj, signers)
    atomic_write(out, canonical(envelope.to_json()))
    ids = ", ".join(s.public_key.keyid[:16] for s in signers)
    click.echo(
        printable(f"signed {file} ({len(policy_obj.stages)} stages) by {ids} -> {out}"), err=True
    )


sign_cmd.name = "sign"
policy.add_command(verify_policy)
policy.add_command(test_policy)
