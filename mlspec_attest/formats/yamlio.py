"""The one YAML loader: bounded, strict, with line numbers (policies, objectives, data schemas).

ruamel.yaml's round-trip loader keeps the line of every key, which lint
messages need. On top of it this module refuses what a human-written
document never needs and an attacker could use (docs/formats.md, "Limits"):

* anchors, aliases and merge keys (``&a``, ``*a``, ``<<: *a``): stacked aliases
  expand into billions of nodes;
* explicit tags (``!!str``, ``!!python/object``, ``!foo``): the round-trip loader
  turns them into objects no schema expects;
* nesting deeper than :data:`~mlspec_attest.formats.limits.MAX_YAML_DEPTH`;
* numbers JSON cannot carry: NaN, infinities (``.inf``, ``1e400``) and integers
  beyond ±(2^53−1), since each document ends up as signed or hashed JSON;
* unpaired surrogate escapes (``"\\ud800"``); an escaped surrogate *pair*, which
  YAML's 16-bit ``\\u`` leaves as two surrogates, is joined into its character
  as JSON readers do;
* more than one document in a stream;
* text that is not UTF-8. A leading UTF-8 byte order mark is accepted and
  dropped (YAML 1.2 §5.2 allows it and editors write it; the signed form is
  canonical JSON, so it cannot make two readers disagree); UTF-16/32 are not.

Every refusal is a :class:`YamlError` (bad input, exit 3) naming the line.

:func:`plain` turns the parsed nodes into plain JSON values with one date rule for
every document kind (docs/data.md, "YAML dates"): an unquoted timestamp is the
RFC 3339 instant it names (UTC, ``Z``; no zone means UTC) and an unquoted bare date
is midnight UTC of that day (``2030-01-01`` -> ``"2030-01-01T00:00:00Z"``), so a
policy's ``expires`` and a data schema's value mean the same instant and hash the
same. Quote a value to keep it as text. :func:`line_finder` maps a path inside the
document to the line that holds it, for lint messages.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionStartEvent
from ruamel.yaml.parser import Parser
from ruamel.yaml.scanner import Scanner
from ruamel.yaml.tokens import BlockEntryToken

from mlspec_attest.errors import BadInputError, MalformedDocumentError
from mlspec_attest.formats import limits
from mlspec_attest.formats.limits import MAX_SAFE_INTEGER
from mlspec_attest.formats.rfc3339 import format_rfc3339, midnight_utc

_SURROGATE = re.compile("[\ud800-\udfff]")


class YamlError(MalformedDocumentError):
    """A YAML file that cannot be read, does not parse or is refused.

    ``detail`` and ``line`` locate a parse problem, so that callers can list it
    with their own headline; ``parsing=False`` marks a file that was not read.
    """

    def __init__(
        self, what: str, detail: str, line: int | None = None, *, parsing: bool = True
    ) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(f"{what}: {'not valid YAML: ' if parsing else ''}{where}{detail}")
        self.detail = detail
        self.line = line
        self.parsing = parsing


def decode_yaml(data: bytes, *, what: str) -> str:
    """UTF-8 text of a YAML file; a leading UTF-8 BOM is dropped, anything else refused."""
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise YamlError(
                what, f"{encoding} text (byte order mark); save the file as UTF-8", parsing=False
            )
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        raise YamlError(
            what,
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {offset}); "
            "is it a binary file?",
            parsing=False,
        ) from exc


def read_yaml_file(path: Path, limit: int, *, what: str, kind: str) -> str:
    """Read (at most ``limit`` bytes) and decode a YAML file; every failure is a YamlError."""

    def refuse(message: str) -> BadInputError:
        return YamlError(what, message.removeprefix(f"{what}: "), parsing=False)

    return decode_yaml(
        limits.read_limited(path, limit, what=what, kind=kind, error=refuse), what=what
    )


class _Refused(Exception):
    """Raised inside the composer; :func:`load_yaml` names the document."""

    def __init__(self, detail: str, line: int | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.line = line


class _StrictComposer(Composer):
    """Refuses anchors, aliases and tags, and bounds nesting, as nodes are composed
    (before the constructor could expand or recurse into anything)."""

    bounded_depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "YAML anchors and aliases (&name, *name, <<: *name) are not allowed; "
                "write the value out in full",
                line,
            )
        if getattr(event, "tag", None) is not None:
            raise _Refused(
                f"explicit YAML tag {str(event.tag)!r} is not allowed; "
                "quote the value to make it a string",
                line,
            )
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self.bounded_depth += 1
            if self.bounded_depth > limits.MAX_YAML_DEPTH:
                raise _Refused(
                    f"nested deeper than {limits.MAX_YAML_DEPTH} levels of mappings and sequences",
                    line,
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self.bounded_depth -= 1


def load_yaml(text: str, *, what: str, max_bytes: int) -> Any:
    """Parse one YAML document (round-trip nodes, with line numbers) strictly and boundedly."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise YamlError(what, f"larger than {limits.format_size(max_bytes)}", parsing=False)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner, yaml.Parser = Scanner, Parser  # lines kept, comments (unread) not collected
    yaml.Composer = _StrictComposer
    try:
        root = yaml.load(io.StringIO(text.removeprefix("\ufeff")))
    except _Refused as exc:
        raise YamlError(what, exc.detail, exc.line) from exc
    except MarkedYAMLError as exc:
        raise YamlError(what, *_where_it_breaks(exc, text.removeprefix("\ufeff"))) from exc
    except RecursionError as exc:  # bounded above; kept as a backstop
        raise YamlError(what, "nested too deeply") from exc
    except Exception as exc:
        # ruamel also raises plain ValueError/OverflowError/TypeError from its
        # constructors (``2024-02-30``, huge hex integers ...): all are bad input.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise YamlError(what, first) from exc
    if isinstance(root, str):
        return _joined(root, what, 1)
    _check_values(root, what)
    return root


# A construct left open is noticed where the parser runs into the next thing, often a line or
# more later: the line to fix is the one where it was opened (the context mark).
_OPENED = {
    "while parsing a flow sequence": "the '[' list opened on this line is not closed",
    "while parsing a flow mapping": "the '{' mapping opened on this line is not closed",
    "while scanning a quoted scalar": "the quoted string that starts on this line is not closed",
    "while scanning a simple key": "the key on this line has no ':' after it",
}


def _where_it_breaks(exc: MarkedYAMLError, text: str) -> tuple[str, int | None]:
    """(detail, 1-based line) of a YAML syntax error: the line to fix, not the line after it."""
    problem, mark, context = exc.problem or exc.context, exc.problem_mark, exc.context_mark
    line = mark.line + 1 if mark else (context.line + 1 if context else None)
    opened = _OPENED.get(exc.context or "")
    if opened and context is not None and line is not None and context.line + 1 < line:
        return f"{opened} (line {line}: {problem})", context.line + 1
    if problem == "mapping values are not allowed here" and mark is not None:
        start = _run_on_start(text, mark.index)
        if start is not None and start < mark.line + 1:
            return (
                f"the text of line {start} runs on into line {mark.line + 1}, where ':' is not "
                f"allowed: is a ':' missing on line {start}?",
                start,
            )
    return f"{problem}", line


def _run_on_start(text: str, index: int) -> int | None:
    """The line where a list item's plain text that runs on into ``index`` starts, if it does.

    After ``- name train`` a more indented ``kind: x`` continues the text ``name train``,
    and the parser stops at that ':'; the key that lacks its ':' is on the first line. (A
    value that runs on, ``b: 2`` then an over-indented ``c: 3``, is the later line's fault.)
    """
    last = None
    with contextlib.suppress(MarkedYAMLError):  # the error the load found: look just before it
        for token in YAML(typ="rt").scan(io.StringIO(text)):
            last = token
    if not isinstance(last, BlockEntryToken):
        return None
    rest = text[last.end_mark.index : index]
    offset = len(rest) - len(rest.lstrip())
    return int(text.count("\n", 0, last.end_mark.index + offset)) + 1


def _check_values(root: Any, what: str) -> None:
    """Refuse numbers JSON cannot carry exactly, and join escaped surrogate pairs in strings
    (iteratively; the tree is depth-bounded)."""
    todo: list[tuple[Any, int | None]] = [(root, 1)]
    while todo:
        node, line = todo.pop()
        if isinstance(node, dict):
            for key in list(node):
                here = _key_line(node, key, line)
                key = _fix_key(node, key, what, here)
                if isinstance(node[key], str):
                    node[key] = _joined(node[key], what, here)
                todo.append((node[key], here))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                here = _item_line(node, i, line)
                if isinstance(item, str):
                    node[i] = _joined(item, what, here)
                todo.append((node[i], here))
        else:
            _check_number(node, what, line)


def _check_number(node: Any, what: str, line: int | None) -> None:
    if isinstance(node, float) and not math.isfinite(node):
        raise YamlError(what, f"{float(node)} is not a finite number", line)
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) > MAX_SAFE_INTEGER:
        raise YamlError(
            what,
            f"integer {_shown(node)} is outside the interoperable range ±(2^53−1); "
            "quote it to make it a string",
            line,
        )


def _joined(text: str, what: str, line: int | None) -> str:
    """YAML's ``\\u`` escapes are 16-bit, so the loader leaves an escaped surrogate pair
    (``"\\ud83d\\ude00"``, as ``json.dumps`` writes 😀) as two surrogates: join them.
    An unpaired one is no character at all (and no JSON reader or writer takes it)."""
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError as exc:
        raise YamlError(what, "a string holds an unpaired UTF-16 surrogate escape", line) from exc


def _fix_key(node: Any, key: Any, what: str, line: int | None) -> Any:
    """A key with an escaped surrogate pair, renamed in place (same position)."""
    if not isinstance(key, str) or not _SURROGATE.search(key):
        return key
    fixed = _joined(key, what, line)
    if fixed in node:
        raise YamlError(what, f"duplicate key {fixed!r}", line)
    position = list(node).index(key)
    node.insert(position, fixed, node.pop(key))
    return fixed


def _key_line(node: Any, key: Any, default: int | None) -> int | None:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return default


def _item_line(node: Any, index: int, default: int | None) -> int | None:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return default


def _shown(value: int) -> str:
    # str() of a huge int is slow and capped at 4300 digits: name its size instead
    return str(value) if value.bit_length() <= 80 else f"with {value.bit_length()} bits"


# ------------------------------------------------------------------ plain values
LineOf = Callable[[Sequence[str | int]], int | None]
"""The line (1-based) of the node at a path of keys and indexes, or None."""


def plain(node: Any) -> Any:
    """Parsed YAML nodes -> plain JSON values (dict, list, str, int, float, bool, None).

    The one date rule: a timestamp becomes its RFC 3339 instant in UTC (a
    timestamp without a zone is UTC), a bare date midnight UTC of that day. A
    timestamp out of range once shifted to UTC keeps its ISO text, so the
    field's own check refuses it on its line.
    """
    if isinstance(node, Mapping):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        moment = node if node.tzinfo else node.replace(tzinfo=UTC)
        try:
            return format_rfc3339(moment)
        except (OverflowError, ValueError):
            return moment.isoformat()
    if isinstance(node, date):
        return format_rfc3339(midnight_utc(node))
    return str(node)


def line_finder(root: Any, *, document_line: bool = False) -> LineOf:
    """A :data:`LineOf` for a parsed document.

    ``document_line``: a path that is not in a mapping document (a missing
    required field) is reported on line 1, the document itself.
    """

    def line_of(path: Sequence[str | int]) -> int | None:
        node, line = root, None
        for part in path:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        if line is None and document_line and isinstance(root, CommentedMap):
            return 1
        return line

    return line_of


# ------------------------------------------------------------------ writing
def dump_yaml(doc: Any, *, comment: str | None = None, flow_lists: Sequence[str] = ()) -> str:
    """``doc`` (plain JSON values) as block YAML a human reviews, e.g. an inferred data schema.

    ``comment`` heads the document; lists under a key in ``flow_lists`` are written
    inline (``enum: [a, b]``). Reading the text back with :func:`load_yaml` and
    :func:`plain` gives ``doc`` again.
    """

    def node(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            mapping = CommentedMap()
            for k, v in value.items():
                mapping[k] = node(v, k)
            return mapping
        if isinstance(value, list):
            seq = CommentedSeq(node(v) for v in value)
            if key in flow_lists:
                seq.fa.set_flow_style()
            return seq
        return value

    root = node(doc)
    if comment and isinstance(root, CommentedMap):
        root.yaml_set_start_comment(comment)
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    buffer = io.StringIO()
    yaml.dump(root, buffer)
    return buffer.getvalue()
