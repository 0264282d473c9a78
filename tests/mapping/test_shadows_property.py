"""The twin layout the mirror writes, read back into shadows: round trips under Hypothesis."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bridge.inventory.models import Shadow, Thing
from bridge.mapping.sections import NAMED_SHADOWS_KEY, twin_sections
from bridge.mapping.shadows import ALL_NAMED, apply_patch, decode_document, shadow_documents
from bridge.mapping.twin import encode_document

# Property names with the characters IoT Hub refuses, '%' and look-alikes of encodings.
_NAMES = (
    st.lists(st.sampled_from([*"ab.$# %1F-_:", "%2E", "%41", "\x01", "é"]), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda name: not name.startswith("$"))
)
_LEAVES = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_DOCUMENTS = st.recursive(
    _LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_NAMES, children, max_size=3),
    max_leaves=12,
)
_STATES = st.dictionaries(_NAMES, _DOCUMENTS.filter(lambda v: v is not None), max_size=4)
# AWS shadow names: [a-zA-Z0-9:_-], up to 64.
_SHADOW_NAMES = st.text(alphabet="abcXYZ019:_-", min_size=1, max_size=8)


def _thing(classic: dict[str, Any] | None, named: dict[str, dict[str, Any]]) -> Thing:
    shadows = [Shadow(name=None, version=1, desired=classic, reported=classic, size_bytes=0)]
    shadows += [
        Shadow(name=name, version=1, desired=state, reported=state, size_bytes=0)
        for name, state in named.items()
    ]
    return Thing(name="t", shadows=shadows)


@given(_DOCUMENTS)
def test_decoding_undoes_encoding(document: Any) -> None:
    assert decode_document(encode_document(document, [])) == document


@given(
    _STATES.filter(lambda state: NAMED_SHADOWS_KEY not in state),
    st.dictionaries(_SHADOW_NAMES, _STATES.filter(bool), max_size=3),
)
def test_every_shadow_comes_back_from_the_twin_the_mirror_writes(
    classic: dict[str, Any], named: dict[str, dict[str, Any]]
) -> None:
    _tags, desired, reported = twin_sections(_thing(classic or None, named), set(), {}, [])
    for section in (desired, reported):
        back = shadow_documents(section)
        assert back.pop(None, {}) == classic
        assert back == named


@given(st.dictionaries(_SHADOW_NAMES, st.none() | _STATES, max_size=3), _STATES)
def test_a_patch_maps_to_one_patch_per_shadow_it_names(
    named: dict[str, dict[str, Any] | None], classic: dict[str, Any]
) -> None:
    classic = {k: v for k, v in classic.items() if k != NAMED_SHADOWS_KEY}
    patch = encode_document(classic, [])
    patch[NAMED_SHADOWS_KEY] = {
        name: None if state is None else encode_document(state, []) for name, state in named.items()
    }
    back = shadow_documents({**patch, "$version": 7})
    assert back.pop(None, {}) == classic
    assert back == named


def test_removing_every_named_shadow_and_system_keys() -> None:
    assert shadow_documents({"shadows": None, "$version": 3, "$metadata": {}}) == {ALL_NAMED: None}
    assert shadow_documents({"a%2Eb": {"$metadata": 1, "c": 2}}) == {None: {"a.b": {"c": 2}}}
    assert shadow_documents({"shadows": 5}) == {None: {"shadows": 5}}


@given(_STATES, _STATES)
def test_a_patch_then_its_own_values_changes_nothing_more(document, patch) -> None:
    once = apply_patch(document, patch)
    assert apply_patch(once, patch) == once
    assert apply_patch(document, None) == {}
    assert all(key not in once for key, value in patch.items() if value is None)
