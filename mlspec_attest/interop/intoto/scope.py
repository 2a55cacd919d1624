"""One (sub)layout under verification: what it was given and what verification found.

The steps of in-toto's verification (:mod:`.layout`, :mod:`.links`,
:mod:`.artifact_rules`, :mod:`.inspections`) read and record through a
:class:`LayoutScope`; a sublayout gets a child scope that writes into the same
report under the stage prefix ``step/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from mlspec_attest.verify.report import Check, VerificationReport


class LayoutScope(Struct):
    """The inputs of one (sub)layout's verification and the findings collected so far."""

    metadata: Any  # in-toto's Metadata of the layout
    keys: Mapping[str, Mapping[str, Any]]  # keyid -> in-toto key dict that must sign it
    link_dir: Path
    report: VerificationReport
    now: datetime
    allow_inspections: bool
    workdir: Path
    inspect_timeout: float
    prefix: str = ""  # "step/" for a sublayout
    step_name: str = ""  # the step a sublayout stands for ("" at the top)
    files: dict[str, list[str]] = field(default_factory=dict)  # stage -> link files found
    signers: dict[str, list[str]] = field(default_factory=dict)  # stage -> keyid8 that counted
    inspection_status: dict[str, str] = field(default_factory=dict)

    def stage(self, name: str) -> str:
        """The report's stage name of a step or inspection of this (sub)layout."""
        return self.prefix + name

    @property
    def layout_stage(self) -> str | None:
        """The report's stage for the layout itself: None at the top, the step in a sublayout."""
        return self.prefix.rstrip("/") or None

    def fail(self, check: Check, stage: str | None, message: str, **kw: str) -> None:
        self.report.fail(check, stage, message, **kw)

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    def sublayout(self, metadata: Any, keyid: str, key: Any, step_name: str) -> LayoutScope:
        """The scope of the sublayout that link ``keyid`` of step ``step_name`` holds.

        ``key`` (the layout's key of that keyid) must sign it; its links are in the
        ``<step>.<keyid8>`` folder, as in-toto looks for them.
        """
        return LayoutScope(
            metadata,
            {keyid: key},
            self.link_dir / f"{step_name}.{keyid[:8]}",
            self.report,
            self.now,
            # A sublayout is signed by a functionary, not by the policy owner:
            # its inspections would run commands the owner never approved.
            allow_inspections=False,
            workdir=self.workdir,
            inspect_timeout=self.inspect_timeout,
            prefix=f"{self.stage(step_name)}/",
            step_name=step_name,
        )
