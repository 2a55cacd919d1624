"""Request ids the middleware makes: UUID version 4 text, never handed out twice, a
forked child's included (the random bytes are read from the OS in batches)."""

from __future__ import annotations

import os
import uuid

from mlspec_attest.serve.asgi import new_request_id, request_id


def test_ids_are_version_4_uuids_and_unique() -> None:
    ids = [new_request_id() for _ in range(5000)]  # many refills of the batch
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_request_id()  # the parent holds random bytes not yet used
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child != new_request_id()


def test_a_clients_sane_id_is_kept_and_anything_else_replaced() -> None:
    assert request_id(b"req-1234.abc:9") == "req-1234.abc:9"
    for bad in (b"", b"has space", b"x" * 10_000, "é".encode()):
        assert uuid.UUID(request_id(bad)).version == 4
