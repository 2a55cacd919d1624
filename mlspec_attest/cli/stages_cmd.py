"""``mlspec-attest stages``."""

from __future__ import annotations

import json

import click

from mlspec_attest.cli.options import json_option
from mlspec_attest.formats.stages import PROFILES


@click.command()
@json_option("Print the vocabulary as JSON.")
def stages(as_json: bool) -> None:
    """List the lifecycle stage kinds, in order, with what each should record."""
    if as_json:
        click.echo(
            json.dumps(
                {
                    "schemaVersion": "https://mlspec-attest.dev/stages/v1",
                    "stages": [
                        {
                            "kind": p.kind.value,
                            "title": p.title,
                            "purpose": p.purpose,
                            "records": list(p.records),
                            "roles": list(p.typical_roles),
                        }
                        for p in PROFILES.values()
                    ],
                },
                indent=2,
            )
        )
        return
    for i, p in enumerate(PROFILES.values(), 1):
        click.echo(f"{i:>2}. {p.kind.value:<11} {p.title}: {p.purpose}")
        if p.records:
            click.echo(f"    records: {'; '.join(p.records)}")
