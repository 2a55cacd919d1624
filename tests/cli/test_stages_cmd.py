"""``mlspec-attest stages``."""

from __future__ import annotations

from ..test_stages import LIFECYCLE
from .conftest import Cli


def test_stages_command(cli: Cli) -> None:
    result = cli("stages")
    assert result.code == 0
    lines = [line for line in result.out.splitlines() if not line.startswith("    ")]
    assert [line.split()[1] for line in lines] == [*LIFECYCLE, "custom"]
    as_json = cli("stages", "--json")
    assert as_json.code == 0
    text = as_json.out
    for kind in LIFECYCLE:
        assert f'"kind": "{kind}"' in text
