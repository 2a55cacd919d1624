"""Regenerate mlspec_attest/policy/cel_parser.json: the CEL grammar's analysed parser tables.

    python tools/cel_parser.py          write the tables for the installed cel-python and Lark
    python tools/cel_parser.py --check  exit 1 if the shipped tables were made from another
                                        grammar or Lark version (then cel-python builds its
                                        own parser in every process: correct, 100+ ms slower)

See mlspec_attest/policy/celparser.py for why and how they are used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import celpy
import lark

from mlspec_attest.policy import celparser

TARGET = Path(celparser.__file__).with_name(celparser.TABLES)


def main() -> int:
    if "--check" in sys.argv:
        shipped = json.loads(TARGET.read_text("utf-8"))
        stale = {k: shipped.get(k) for k in ("grammarSha256", "lark")} != celparser.tag(celpy, lark)
        print(f"{TARGET.name}: {'stale' if stale else 'current'}")
        return 1 if stale else 0
    tables = celparser.build_tables(celpy, lark)
    TARGET.write_text(json.dumps(tables, separators=(",", ":"), sort_keys=True) + "\n", "utf-8")
    print(f"wrote {TARGET} ({TARGET.stat().st_size:,} bytes) for lark {tables['lark']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
