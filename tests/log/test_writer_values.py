"""What a server hands the writer is checked before anything is written (no second pass
over the map the writer built itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlspec_attest.errors import BadInputError
from mlspec_attest.log.files import RECORDS
from mlspec_attest.log.record import decode_record
from mlspec_attest.signing.keys import LocalKeySigner

from .conftest import request
from .test_writer import open_log


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"status": True}, "must be integers"),
        ({"status": 200.0}, "must be integers"),
        ({"bytes_sent": -1}, "must be unsigned"),
        ({"latency_us": 2**63}, "must be unsigned"),
        ({"status": 1000}, "status 100-999"),
        ({"model_digest": "A" * 64}, "64 lowercase hex"),
        ({"vsa_digest": "sha256:" + "b" * 63}, "64 lowercase hex"),
        ({"request_id": ""}, "request_id is empty"),
    ],
)
def test_bad_request_values_write_nothing(
    tmp_path: Path, signer: LocalKeySigner, override: dict[str, Any], message: str
) -> None:
    with open_log(tmp_path / "log", signer) as log:
        with pytest.raises(BadInputError, match=message):
            log.append(**request(0, **override))
        assert log.size == 0 and (tmp_path / "log" / RECORDS).stat().st_size == 0


def test_what_the_writer_writes_decodes_strictly(tmp_path: Path, signer: LocalKeySigner) -> None:
    """The writer skips check_map on its own map: the strict decoder must still accept
    every record it writes, a prefixed digest and odd text included."""
    with open_log(tmp_path / "log", signer) as log:
        record = log.append(
            **request(0, vsa_digest="sha256:" + "c" * 64, user_agent='caf\udce9 "x"\n')
        )
    data = (tmp_path / "log" / RECORDS).read_bytes()
    assert decode_record(data) == record
    assert record.vsa_digest == "c" * 64
