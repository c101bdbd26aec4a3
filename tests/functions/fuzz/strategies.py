"""Hypothesis strategies for hostile JSON, and the bounded, derandomized settings of the fuzz layer.

Python's ``json`` (and so every parser here) meets four kinds of trouble besides bad syntax:
lone UTF-16 surrogates in text, nesting deep enough for a ``RecursionError``, integers past the
4,300-digit limit (a ``ValueError``) and wrong types where a field is expected. The strategies
make all four, both as whole documents and as mutations of a valid document (a field replaced by
any of them, or removed), which is what reaches the validation behind the parser.

``make test`` runs the ``fuzz`` profile: derandomized (the same examples every run, so CI cannot
flake), bounded, and without shrinking. ``FUZZ_PROFILE=fuzz-explore`` draws fresh, and more,
examples and shrinks what fails, when hunting.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

settings.register_profile(
    "fuzz",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    # No shrinking: a failure is reported as found, in bounded time (shrinking an HTTP example
    # can take minutes); run the explore profile to shrink it.
    phases=[Phase.explicit, Phase.generate],
)
settings.register_profile(
    "fuzz-explore",
    max_examples=2000,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
FUZZ = settings.get_profile(os.environ.get("FUZZ_PROFILE", "fuzz"))


@dataclass(frozen=True)
class Raw:
    """JSON text put into a document as it is (what ``json.dumps`` cannot produce)."""

    text: str


SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
#: Text with lone surrogates, control characters and the characters keys and paths forbid.
hostile_text = st.lists(
    st.one_of(
        st.characters(),
        SURROGATES,
        st.sampled_from(list("/\\%.+=#?:@ \x00\x1f\x7f\x85\u2028\ufeff")),
        st.just("\U0001f600"),
    ),
    max_size=24,
).map("".join)
#: Also some long text, where a limit may hide.
texts = st.one_of(hostile_text, hostile_text.map(lambda text: (text or "+") * 200))
huge_numbers = st.integers(min_value=4301, max_value=6000).map(lambda digits: Raw("7" * digits))
deep_nesting = st.integers(min_value=65, max_value=3000).map(lambda n: Raw("[" * n + "]" * n))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    huge_numbers,
    deep_nesting,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=12,
)


def render(value: Any) -> str:
    """JSON text of ``value``; :class:`Raw` parts go in verbatim, text is ``\\uXXXX``-escaped."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        items = (f"{json.dumps(str(key))}:{render(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(item) for item in value) + "]"
    return json.dumps(value)


def _slots(document: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key or index) in ``document``."""
    stack = [document]
    while stack:
        container = stack.pop()
        entries = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in list(entries):
            yield container, key
            if isinstance(item, dict | list) and item:
                stack.append(item)


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one to three fields replaced by hostile values or removed."""
    result = copy.deepcopy(document)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = list(_slots(result))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        if isinstance(container, dict) and draw(st.booleans()):
            del container[key]
        else:
            container[key] = draw(json_values)
    return result


def bodies(valid: Any) -> st.SearchStrategy[bytes]:
    """Request or message bodies: mostly ``valid`` mutated, also any JSON, and plain garbage."""
    documents = st.one_of(mutated(valid), mutated(valid), json_values)
    return st.one_of(
        documents.map(lambda document: render(document).encode("ascii")),
        st.binary(max_size=64),
    )


def queue_bodies(valid: Any) -> st.SearchStrategy[str | bytes]:
    """Queue messages: :func:`bodies`, as text, bytes or base64 (Event Grid has written each)."""
    return st.tuples(bodies(valid), st.sampled_from(["text", "bytes", "base64"])).map(
        lambda pair: (
            pair[0]
            if pair[1] == "bytes"
            else base64.b64encode(pair[0]).decode()
            if pair[1] == "base64"
            else pair[0].decode("utf-8", "replace")
        )
    )
