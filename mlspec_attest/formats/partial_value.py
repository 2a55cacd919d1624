"""``PartlyCompared``: a value class some of whose fields are not part of its value.

A value type is a frozen ``msgspec.Struct`` (docs/architecture.md), which compares,
hashes and shows every field. Some carry a field that is not what the value *is*: a
cache of digests already computed, the state an audit read on its way, a directory's
manifest whose root is already the digest. Such a class lists those fields in
``_uncompared``; two values are equal when the other fields are, hash by them, and show
only them (the left-out ones can be large).
"""

from __future__ import annotations

from typing import Any, ClassVar

from msgspec import Struct


class PartlyCompared(Struct, frozen=True):
    """Equality, hash and repr over the fields not named in ``_uncompared``."""

    _uncompared: ClassVar[frozenset[str]] = frozenset()

    def _compared(self) -> tuple[Any, ...]:
        return tuple(
            getattr(self, name) for name in self.__struct_fields__ if name not in self._uncompared
        )

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = (
            f"{name}={getattr(self, name)!r}"
            for name in self.__struct_fields__
            if name not in self._uncompared
        )
        return f"{type(self).__name__}({', '.join(shown)})"
