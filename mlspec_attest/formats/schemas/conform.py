"""Whether a document conforms to one of the shipped JSON Schemas, without jsonschema.

Importing jsonschema (with attrs, referencing, rpds and the bundled metaschemas) and
building a validator costs more than ``verify`` of a 13-stage chain spends on everything
else, and nearly every document checked is valid: the policy, each attestation's
metadata, the evidence records. :func:`conforms` answers "valid?" for those, keyword by
keyword with jsonschema's Draft 2020-12 semantics (its type checker, its equality for
``enum``/``const``/``uniqueItems``, its rule for ``unevaluatedProperties``; ``format`` is
an annotation, as Draft 2020-12 makes it by default and as our jsonschema validators are
built: times are judged by :mod:`mlspec_attest.formats.rfc3339` where they are read, the
same on every machine, not by whichever format library happens to be installed).

It never words a violation. A document it does not call valid, or a schema with a keyword
it does not implement, goes to jsonschema (:mod:`mlspec_attest.formats.schemas`), which
finds and words every violation: the messages have one source, and a mistake here can
only cost time, not a wrong verdict, as long as ``True`` is never said of a document
jsonschema would reject (tests/test_schema_conform.py compares both on every shipped
schema, valid documents and mutations of them).
"""

from __future__ import annotations

import itertools
import numbers
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any

#: Keywords that only annotate (jsonschema ignores them and any keyword it does not know).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "readOnly", "writeOnly", "patternErrorMessage", "format"}
)  # fmt: skip
#: jsonschema's Draft 2020-12 keywords that this module does not implement.
_UNSUPPORTED = frozenset(
    {"$dynamicRef", "$dynamicAnchor", "$anchor", "contains", "dependentRequired", "if",
     "maxProperties", "multipleOf", "patternProperties", "unevaluatedItems"}
)  # fmt: skip


class Unsupported(Exception):
    """The schema uses something :func:`conforms` does not implement."""


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Number)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _unbool(value: Any, true: object = object(), false: object = object()) -> Any:
    if value is True:
        return true
    if value is False:
        return false
    return value


def equal(one: Any, two: Any) -> bool:
    """jsonschema's equality: ``True`` is not ``1``, recursively."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(equal(i, j) for i, j in zip(one, two, strict=False))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(k in two and equal(v, two[k]) for k, v in one.items())
    return bool(_unbool(one) == _unbool(two))


def unique(items: list[Any]) -> bool:
    """jsonschema's ``uniq``: sorted neighbours when the items sort, else every pair."""
    try:
        ordered = sorted(_unbool(i) for i in items)
        return not any(
            equal(i, j) for i, j in zip(ordered, itertools.islice(ordered, 1, None), strict=False)
        )
    except (NotImplementedError, TypeError):
        seen: list[Any] = []
        for item in map(_unbool, items):
            if any(equal(i, item) for i in seen):
                return False
            seen.append(item)
        return True


def supported(schema: Any, root: Mapping[str, Any]) -> None:
    """Raise :class:`Unsupported` if ``schema`` (anywhere inside) needs what is not here."""
    stack = [schema, *root.get("$defs", {}).values()]
    while stack:
        node = stack.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise Unsupported(f"schema {node!r}")
        for keyword, value in node.items():
            if keyword in _UNSUPPORTED or (keyword == "$id" and node is not root):
                raise Unsupported(keyword)
            if keyword == "$ref" and not str(value).startswith("#/"):
                raise Unsupported(f"$ref {value!r}")
            if keyword in ("properties", "dependentSchemas"):
                stack.extend(value.values())
            elif keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
                stack.extend(value)
            elif keyword in ("not", "items", "additionalProperties", "propertyNames",
                             "unevaluatedProperties"):  # fmt: skip
                stack.append(value)


class Conformance:
    """Validity of documents under one schema (its ``$ref`` targets resolved in ``root``)."""

    def __init__(self, schema: Mapping[str, Any], root: Mapping[str, Any]) -> None:
        self.schema = schema
        self.root = root

    def conforms(self, doc: Any) -> bool:
        """True only if ``doc`` is valid as jsonschema would judge it; False if it is not,
        or if this module cannot tell (ask jsonschema then)."""
        try:
            return self.valid(self.schema, doc)
        except (Unsupported, RecursionError, LookupError, TypeError, AttributeError, re.error):
            return False

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def valid(self, schema: Any, value: Any) -> bool:
        if schema is True or schema is False:
            return schema
        for keyword, arg in schema.items():
            check = _KEYWORDS.get(keyword)
            if check is None:
                if keyword in _ANNOTATIONS or keyword in _IN_CONTEXT:
                    continue
                if keyword in _UNSUPPORTED:
                    raise Unsupported(keyword)
                continue  # jsonschema ignores what it does not know
            if not check(self, arg, value, schema):
                return False
        return True

    def evaluated(self, schema: Any, value: dict[str, Any]) -> set[str]:
        """jsonschema's ``find_evaluated_property_keys_by_schema``."""
        if isinstance(schema, bool):
            return set()
        keys: set[str] = set()
        if "$ref" in schema:
            keys |= self.evaluated(self.resolve(schema["$ref"]), value)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            keys |= properties.keys() & value.keys()
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            sub = schema.get(keyword)
            if sub is not None:
                keys |= {k for k, v in value.items() if self.valid(sub, v)}
        for name, sub in schema.get("dependentSchemas", {}).items():
            if name in value:
                keys |= self.evaluated(sub, value)
        for keyword in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(keyword, []):
                if self.valid(sub, value):
                    keys |= self.evaluated(sub, value)
        return keys


Check = Callable[[Conformance, Any, Any, Any], bool]


def _type(c: Conformance, types: Any, value: Any, schema: Any) -> bool:
    names = [types] if isinstance(types, str) else types
    return any(TYPES[name](value) for name in names)


def _properties(c: Conformance, properties: Any, value: Any, schema: Any) -> bool:
    if not isinstance(value, dict):
        return True
    return all(c.valid(sub, value[name]) for name, sub in properties.items() if name in value)


def _additional(c: Conformance, extra: Any, value: Any, schema: Any) -> bool:
    if not isinstance(value, dict):
        return True
    known = schema.get("properties", {})
    extras = [k for k in value if k not in known]
    if isinstance(extra, dict):
        return all(c.valid(extra, value[k]) for k in extras)
    return bool(extra) or not extras


def _unevaluated(c: Conformance, extra: Any, value: Any, schema: Any) -> bool:
    if not isinstance(value, dict):
        return True
    seen = c.evaluated(schema, value)
    return all(c.valid(extra, v) for k, v in value.items() if k not in seen)


def _items(c: Conformance, items: Any, value: Any, schema: Any) -> bool:
    if not isinstance(value, list):
        return True
    return all(c.valid(items, v) for v in value[len(schema.get("prefixItems", [])) :])


def _one_of(c: Conformance, subs: Any, value: Any, schema: Any) -> bool:
    return sum(1 for sub in subs if c.valid(sub, value)) == 1


def _pattern(c: Conformance, pattern: Any, value: Any, schema: Any) -> bool:
    return not isinstance(value, str) or re.search(pattern, value) is not None


def _sized(kind: type[Sized], test: Callable[[int, Any], bool]) -> Check:
    return lambda c, bound, value, schema: not isinstance(value, kind) or test(len(value), bound)


def _number(test: Callable[[Any, Any], bool]) -> Check:
    return lambda c, bound, value, schema: not _is_number(value) or test(value, bound)


_KEYWORDS: dict[str, Check] = {
    "type": _type,
    "properties": _properties,
    "additionalProperties": _additional,
    "unevaluatedProperties": _unevaluated,
    "required": lambda c, names, value, s: (
        not isinstance(value, dict) or all(n in value for n in names)
    ),
    "propertyNames": lambda c, sub, value, s: (
        not isinstance(value, dict) or all(c.valid(sub, k) for k in value)
    ),
    "dependentSchemas": lambda c, deps, value, s: (
        not isinstance(value, dict)
        or all(c.valid(sub, value) for name, sub in deps.items() if name in value)
    ),
    "minProperties": _sized(dict, lambda n, bound: n >= bound),
    "items": _items,
    "prefixItems": lambda c, subs, value, s: (
        not isinstance(value, list)
        or all(c.valid(sub, v) for sub, v in zip(subs, value, strict=False))
    ),
    "minItems": _sized(list, lambda n, bound: n >= bound),
    "maxItems": _sized(list, lambda n, bound: n <= bound),
    "uniqueItems": lambda c, on, value, s: not (on and isinstance(value, list)) or unique(value),
    "minLength": _sized(str, lambda n, bound: n >= bound),
    "maxLength": _sized(str, lambda n, bound: n <= bound),
    "pattern": _pattern,
    "minimum": _number(lambda v, bound: not v < bound),
    "maximum": _number(lambda v, bound: not v > bound),
    "exclusiveMinimum": _number(lambda v, bound: not v <= bound),
    "exclusiveMaximum": _number(lambda v, bound: not v >= bound),
    "const": lambda c, const, value, s: equal(value, const),
    "enum": lambda c, values, value, s: any(equal(each, value) for each in values),
    "$ref": lambda c, ref, value, s: c.valid(c.resolve(ref), value),
    "not": lambda c, sub, value, s: not c.valid(sub, value),
    "allOf": lambda c, subs, value, s: all(c.valid(sub, value) for sub in subs),
    "anyOf": lambda c, subs, value, s: any(c.valid(sub, value) for sub in subs),
    "oneOf": _one_of,
}
#: Keywords read by another keyword of the same schema, not checks of their own.
_IN_CONTEXT = frozenset({"then", "else", "minContains", "maxContains"})


def conformance(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Conformance | None:
    """A checker for ``schema`` (``$ref`` targets in ``root``), or None if it needs a
    keyword this module does not implement (jsonschema then judges every document)."""
    try:
        supported(schema, root)
    except Unsupported:
        return None
    return Conformance(schema, root)
