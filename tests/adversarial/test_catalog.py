"""The corpus's catalogue: README.md lists every registered scenario, as registered.

Regenerate the table after adding a scenario::

    .venv/bin/python -m tests.adversarial.test_catalog > /tmp/table.md

and paste it between the ``scenarios`` markers of ``tests/adversarial/README.md``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .kit import CATEGORIES, REGISTRY, render_catalog

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- scenarios:begin -->\n", "<!-- scenarios:end -->"


def load_all() -> None:
    for category in CATEGORIES:
        importlib.import_module(f"{__package__}.test_{category}")


def test_every_category_has_scenarios_and_the_corpus_has_sixty() -> None:
    load_all()
    for category in CATEGORIES:
        assert any(s.category == category for s in REGISTRY.values()), category
    assert len(REGISTRY) >= 60


def test_readme_lists_every_scenario_as_registered() -> None:
    load_all()
    text = README.read_text()
    table = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert table == render_catalog(), "README.md is stale: regenerate its scenario table"


if __name__ == "__main__":  # pragma: no cover
    load_all()
    print(render_catalog(), end="")
