"""One way to read a policy, whatever its form and whoever asks.

``read_policy_any`` (``policy show``, ``inspect``) and the readers behind lint,
``policy sign`` and ``verify`` now share one path: YAML goes through
``formats.yamlio`` (the one YAML loader and its one date rule) and every policy
through ``compile_policy``. Each test gives the same policy to every path and
asserts the same answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspec_attest.formats.jsonio import canonical
from mlspec_attest.formats.yamlio import line_finder, load_yaml, plain
from mlspec_attest.policy import compile_policy, read_policy_any
from mlspec_attest.policy.load import lint_policy_text, load_policy_yaml
from mlspec_attest.policy.objectives import load_objectives_text
from mlspec_attest.policy.signed import load_signed_policy, parse_signed_policy
from mlspec_attest.policy.source import parse_yaml, read_policy_text
from mlspec_attest.policy.templates import template_text

from .support import Pipeline


def test_yaml_and_its_signed_form_read_the_same(pipeline: Pipeline) -> None:
    from_yaml, yaml_digest = read_policy_any(pipeline.policy_yaml)
    from_signed, signed_digest = read_policy_any(pipeline.signed_policy_path)
    assert from_yaml.to_json() == from_signed.to_json()
    assert yaml_digest == signed_digest == pipeline.signed.digest
    assert from_signed.to_json() == load_signed_policy(pipeline.signed_policy_path).policy.to_json()
    assert from_yaml.to_json() == load_policy_yaml(pipeline.policy_yaml).to_json()


def test_the_signed_payload_compiles_like_the_yaml(pipeline: Pipeline) -> None:
    # The payload is compiled by the same compile_policy, with key paths forbidden.
    signed = parse_signed_policy(pipeline.signed.envelope.to_json())
    again, problems = compile_policy(signed.document, base_dir=None)
    assert again is not None and [p for p in problems if p.severity == "error"] == []
    assert canonical(again.to_json()) == pipeline.signed.envelope.payload


@pytest.mark.parametrize(
    ("written", "instant"),
    [
        ('"2031-05-06T07:08:09Z"', "2031-05-06T07:08:09Z"),
        ("2031-05-06T07:08:09Z", "2031-05-06T07:08:09Z"),
        ("2031-05-06T09:08:09+02:00", "2031-05-06T07:08:09Z"),
        ("2031-05-06 07:08:09", "2031-05-06T07:08:09Z"),  # no zone: UTC
        ("2031-05-06", "2031-05-06T00:00:00Z"),  # a bare date: midnight UTC
    ],
)
def test_one_date_rule_for_policies_and_the_yaml_loader(
    pipeline: Pipeline, written: str, instant: str
) -> None:
    text = re.sub(r"(?m)^expires: .*$", f"expires: {written}", pipeline.policy_yaml.read_text())
    root, _ = parse_yaml(text, source="p.yaml")
    assert plain(root)["expires"] == plain(load_yaml(text, what="p", max_bytes=1 << 20))["expires"]
    assert plain(root)["expires"] == instant
    policy, problems = lint_policy_text(
        text, source="p.yaml", base_dir=pipeline.policy_yaml.parent, now=NOW
    )
    assert policy is not None, problems
    assert policy.expires == datetime.fromisoformat(instant.replace("Z", "+00:00"))


def test_objectives_documents_read_yaml_like_policies() -> None:
    # An unquoted date where a string is expected becomes the same instant text as a
    # policy's, so both documents name one thing by one value.
    text = template_text("objectives").replace("version:", "version: 2031-05-06 #", 1)
    objectives = load_objectives_text(text, what="o.yaml")
    assert objectives.version == "2031-05-06T00:00:00Z"


def test_line_numbers_come_from_the_one_loader(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(template_text("minimal"))
    text = read_policy_text(path)
    _, line_of = parse_yaml(text, source=str(path))
    loader_line_of = line_finder(load_yaml(text, what="p", max_bytes=1 << 20), document_line=True)
    for where in (["expires"], ["stages", 0, "name"], ["nowhere"], ["stages", 99]):
        assert line_of(where) == loader_line_of(where)
    assert line_of(["nowhere"]) == 1  # a missing field is reported on the document


NOW = datetime(2030, 1, 1, tzinfo=UTC)
