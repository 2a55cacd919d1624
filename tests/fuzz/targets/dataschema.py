"""dataschema.load_data_schema: a data schema (YAML, or JSON for ``.json``), then validation.

Input: a mode byte (even: YAML, odd: JSON) and the schema bytes. Checks: only
bad-input errors; an accepted schema validates a small real CSV and JSON
Lines file and its digest is the same after a JSON round trip.
"""

from __future__ import annotations

from mlspec_attest.evidence.dataschema import load_data_schema, schema_digest, validate_dataset
from mlspec_attest.formats.jsonio import canonical, loads_strict

from ._harness import input_file, main, parse_or_none, split_mode

INSTRUMENT = ("ruamel",)
CSV = b"id,site,temp_c,humidity,ok,note\n1,north,20.1,40,false,x\n2,south,,NA,true,\n"
JSONL = b'{"id": 1, "site": "north", "temp_c": 20.1, "ok": false}\n{"id": "2", "extra": 1}\n'


def TestOneInput(data: bytes) -> None:
    mode, body = split_mode(data, 2)
    schema = parse_or_none(
        load_data_schema, input_file(body, "schema.json" if mode else "schema.yaml")
    )
    if schema is None:
        return
    digest = parse_or_none(schema_digest, schema)
    if digest is None:
        return  # a number canonical JSON refuses (validation would refuse it the same way)
    assert schema_digest(loads_strict(canonical(schema))) == digest
    for name, rows in (("rows.csv", CSV), ("rows.jsonl", JSONL)):
        result = validate_dataset(input_file(rows, name), schema)
        assert result.schema_sha256 == digest
        result.to_json()


if __name__ == "__main__":
    main(TestOneInput)
