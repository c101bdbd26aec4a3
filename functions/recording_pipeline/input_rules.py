"""The rules every outside input meets before anything stores or uses it: text, ids, keys, JSON.

One module, so the API (body, query, path), the callback parser and the archiver's event parser
cannot drift apart. Each check answers a short rule (``None`` when the value is fine), and the
caller names the field: the API as a 400 problem, the archiver as the poison envelope's reason.

Why each rule exists:

- **Text.** Python's ``json`` accepts lone UTF-16 surrogates (``"\\ud800"``) and gives ``str``
  values that cannot be encoded to UTF-8: they break Table writes and response serialization far
  from where they entered. Text must encode to UTF-8.
- **JSON.** ``json.loads`` raises ``RecursionError`` on deep nesting, ``ValueError`` on integers
  over 4,300 digits and ``UnicodeDecodeError`` on bytes that are not UTF-8, besides
  ``JSONDecodeError``: :func:`load_json` turns every parser failure into one error with a reason,
  and refuses nesting deeper than :data:`MAX_JSON_DEPTH` (no legitimate body comes near it, and a
  document that parsed once then parses again anywhere).
- **Table keys.** A PartitionKey or RowKey holds up to 1 KiB; Table strings are UTF-16, so 512
  code units (Azurite refuses 513 too). Ids become keys through ``ids.encode_id``, which keeps
  ASCII letters, digits, ``-`` and ``_`` and writes every other UTF-8 byte as ``%XX``: one
  character can become 3 (ASCII punctuation), 6, 9 or 12 (a character outside the BMP). The rule
  is on the encoded length, so an id of letters and digits may have 512 characters, one of ASCII
  punctuation 170, one of astral characters 42.
- **Blob names.** At most 1,024 characters and 254 path segments.
- **Ids.** Not empty, valid text, no control characters (C0, DEL, C1: Table keys forbid them and
  no ACS id has them), at most :data:`MAX_ID_CHARS` characters, and where the id becomes a key,
  the key rule.
"""

from __future__ import annotations

import json
from typing import Any

from recording_pipeline.ids import encode_id

#: 1 KiB of UTF-16 (Azure's documented limit of a PartitionKey or RowKey).
TABLE_KEY_MAX_CHARS = 512
BLOB_NAME_MAX_CHARS = 1024
BLOB_NAME_MAX_SEGMENTS = 254
#: Any id this app takes from outside (call ids, participants, ...), before the key rule.
MAX_ID_CHARS = 1024
#: Deeper than any request or event this app takes (a callback delivery is 4 levels deep).
MAX_JSON_DEPTH = 64

#: A value the Table service hands out for paging (its continuation keys) is opaque, but short
#: printable ASCII (Azure's look like ``1!16!cmVjLTI-``, Azurite's are base64).
MAX_OPAQUE_TOKEN_CHARS = 1024


class UnreadableJsonError(ValueError):
    """The bytes are not a JSON document this app can take; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def is_text(value: str) -> bool:
    """True when ``value`` encodes to UTF-8 (no lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_utf8(data: bytes) -> bool:
    """True when ``data`` decodes as UTF-8 (no stray, overlong or surrogate sequence)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def text_problem(value: str) -> str | None:
    if is_text(value):
        return None
    return "must be valid Unicode text (it holds a lone UTF-16 surrogate)"


def id_problem(value: str, *, max_chars: int = MAX_ID_CHARS) -> str | None:
    """The id rule (not empty, valid text, no control characters, at most ``max_chars``)."""
    if not value.strip():
        return "must not be empty"
    problem = text_problem(value)
    if problem is not None:
        return problem
    if any(_is_control(char) for char in value):
        return "must not contain control characters"
    if len(value) > max_chars:
        return f"must be at most {max_chars} characters"
    return None


def key_id_problem(value: str, *, key_prefix: str = "") -> str | None:
    """The id rule, then the Table key rule for ``key_prefix + encode_id(value)``."""
    problem = id_problem(value)
    if problem is not None:
        return problem
    room = TABLE_KEY_MAX_CHARS - len(key_prefix)
    encoded = len(encode_id(value))
    if encoded > room:
        return (
            f"is too long to be a Table key: {encoded} characters once encoded, at most {room} "
            "(letters, digits, '-' and '_' count 1; every other character 3 per UTF-8 byte)"
        )
    return None


def is_opaque_token(value: str) -> bool:
    """1 to :data:`MAX_OPAQUE_TOKEN_CHARS` printable ASCII characters (no space, no control)."""
    return 0 < len(value) <= MAX_OPAQUE_TOKEN_CHARS and all("!" <= char <= "~" for char in value)


def blob_name_problem(name: str) -> str | None:
    if len(name) > BLOB_NAME_MAX_CHARS:
        return f"is {len(name)} characters long, more than the {BLOB_NAME_MAX_CHARS} of a blob name"
    if name.count("/") + 1 > BLOB_NAME_MAX_SEGMENTS:
        return f"has more than the {BLOB_NAME_MAX_SEGMENTS} path segments of a blob name"
    return None


def load_json(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON document; any failure of any kind is an :class:`UnreadableJsonError`.

    The text inside is not checked here (see :func:`invalid_text_path`), so a caller can name
    the field that holds bad text.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except UnicodeDecodeError:
        raise UnreadableJsonError("is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise UnreadableJsonError(f"is not valid JSON ({error.msg} at {error.pos})") from None
    except RecursionError:
        raise UnreadableJsonError("nests too deeply to be read") from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise UnreadableJsonError(f"cannot be read ({error})") from None
    except Exception as error:  # whatever else a parser may raise: still bad input
        raise UnreadableJsonError(f"cannot be read ({type(error).__name__})") from None
    if json_depth(value) > max_depth:
        raise UnreadableJsonError(f"nests deeper than {max_depth} levels")
    return value


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1); iterative."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


def invalid_text_path(value: Any) -> str | None:
    """Where the first string (or object key) that is not valid text sits, as ``a.b[2]``.

    ``""`` for the document itself; ``None`` when all text is valid.
    """
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not is_text(item):
                return path
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                child_path = f"{path}.{key}" if path else str(key)
                if not is_text(key):
                    return f"{path}.{_printable(key)}" if path else _printable(key)
                stack.append((child, child_path))
        elif isinstance(item, list):
            indexed = reversed(list(enumerate(item)))
            stack.extend((child, f"{path}[{index}]") for index, child in indexed)
    return None


def sanitized(value: Any) -> tuple[Any, bool]:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD, and whether any was.

    For data already stored: what is shown of a bad row is readable and marked, never a 500.
    """
    if isinstance(value, str):
        if is_text(value):
            return value, False
        return "".join("\ufffd" if _is_surrogate(char) else char for char in value), True
    if isinstance(value, dict):
        changed = False
        result = {}
        for key, child in value.items():
            clean_key, key_changed = sanitized(key)
            clean_child, child_changed = sanitized(child)
            result[clean_key] = clean_child
            changed = changed or key_changed or child_changed
        return result, changed
    if isinstance(value, list):
        items = [sanitized(child) for child in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def _is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _printable(key: str) -> str:
    return key.encode("utf-8", "backslashreplace").decode("ascii", "replace")
