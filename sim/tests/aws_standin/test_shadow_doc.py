import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge_sim.aws.shadow_doc import (
    MAX_STATE_BYTES,
    Shadow,
    ShadowError,
    compute_delta,
    parse_request,
)


def update(shadow: Shadow, state: object, **extra: object):
    return shadow.update(parse_request(json.dumps({"state": state, **extra})), now=1000)


def test_first_update_creates_version_1_with_delta_for_desired_only() -> None:
    shadow = Shadow()
    result = update(shadow, {"desired": {"color": "red", "size": 2}}, clientToken="t1")
    assert shadow.version == 1
    assert result.accepted["state"] == {"desired": {"color": "red", "size": 2}}
    assert result.accepted["clientToken"] == "t1"
    assert result.accepted["metadata"]["desired"]["color"] == {"timestamp": 1000}
    assert "previous" not in result.documents
    assert result.documents["current"]["state"] == {"desired": {"color": "red", "size": 2}}
    assert result.delta is not None
    assert result.delta["state"] == {"color": "red", "size": 2}


def test_null_deletes_a_field_and_a_whole_section() -> None:
    shadow = Shadow()
    update(shadow, {"desired": {"a": 1, "b": {"c": 2}}, "reported": {"a": 1}})
    update(shadow, {"desired": {"b": {"c": None}}})
    assert shadow.desired == {"a": 1}
    result = update(shadow, {"desired": None})
    assert shadow.desired == {}
    assert shadow.document()["state"] == {"reported": {"a": 1}}
    assert result.documents["previous"]["state"]["desired"] == {"a": 1}
    assert result.delta is None


def test_delta_only_for_desired_fields_that_differ() -> None:
    assert compute_delta({"a": 1, "b": {"x": 1, "y": 2}}, {"a": 1, "b": {"x": 1}}) == {
        "b": {"y": 2}
    }
    assert compute_delta({"list": [1, 2]}, {"list": [1]}) == {"list": [1, 2]}


def test_version_mismatch_is_409_and_changes_nothing() -> None:
    shadow = Shadow()
    update(shadow, {"reported": {"t": 20}})
    with pytest.raises(ShadowError) as info:
        update(shadow, {"reported": {"t": 21}}, version=7)
    assert info.value.code == 409
    assert shadow.reported == {"t": 20}
    assert shadow.version == 1


def test_delete_keeps_version_for_the_next_update() -> None:
    shadow = Shadow()
    update(shadow, {"reported": {"t": 1}})
    update(shadow, {"reported": {"t": 2}})
    answer = shadow.delete(client_token="d")
    assert answer["version"] == 2
    with pytest.raises(ShadowError) as info:
        shadow.document()
    assert info.value.code == 404
    update(shadow, {"reported": {"t": 3}})
    assert shadow.version == 3


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"not json", 400, "Invalid JSON"),
        (b"[1,2]", 400, "Invalid JSON"),
        (b'{"desired": {}}', 400, "Missing required node: state"),
        (b'{"state": 5}', 400, "State node must be an object"),
        (b'{"state": {"foo": {}}}', 400, "State contains an invalid node: 'foo'"),
        (b'{"state": {"desired": 3}}', 400, "Desired node must be an object"),
        (
            b'{"state": {"desired": {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}}}',
            400,
            "nesting",
        ),
        (b'{"state": {}, "version": "x"}', 400, "Invalid version"),
        (b"\xff\xfe", 415, "UTF-8"),
    ],
)
def test_malformed_requests_get_aws_error_codes(payload: bytes, code: int, message: str) -> None:
    with pytest.raises(ShadowError) as info:
        parse_request(payload)
    assert info.value.code == code
    assert message in info.value.message


def test_state_over_8kb_is_rejected_with_413() -> None:
    shadow = Shadow()
    with pytest.raises(ShadowError) as info:
        update(shadow, {"reported": {"blob": "x" * MAX_STATE_BYTES}})
    assert info.value.code == 413
    assert shadow.version == 0


json_leaf = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.booleans())
flat_state = st.dictionaries(st.sampled_from("abcd"), st.one_of(json_leaf, st.none()), max_size=4)


@given(st.lists(st.tuples(st.sampled_from(["desired", "reported"]), flat_state), max_size=12))
def test_updates_merge_like_a_dictionary_and_versions_count_updates(
    steps: list[tuple[str, dict[str, object]]],
) -> None:
    shadow = Shadow()
    model: dict[str, dict[str, object]] = {"desired": {}, "reported": {}}
    for section, patch in steps:
        update(shadow, {section: patch})
        for key, value in patch.items():
            if value is None:
                model[section].pop(key, None)
            else:
                model[section][key] = value
    assert shadow.desired == model["desired"]
    assert shadow.reported == model["reported"]
    assert shadow.version == len(steps)
