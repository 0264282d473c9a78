"""Folding events into a device view: versions order them, duplicates and stale ones drop."""

import random

from hypothesis import given
from hypothesis import strategies as st

from bridge.core.events import MembershipChanged, ShadowChanged, ThingChanged
from bridge.core.view import DeviceView, ShadowView, fold, merge


def _apply(view, events):
    for event in events:
        view = fold(view, event) or view
    return view


def test_thing_events_replace_type_and_attributes_and_stale_ones_are_dropped():
    view = DeviceView("d")
    v2 = fold(view, ThingChanged("d", 2, thing_type="t", attributes={"a": "1"}))
    assert (v2.thing_version, v2.thing_type, v2.attributes) == (2, "t", {"a": "1"})
    assert fold(v2, ThingChanged("d", 1, attributes={"old": "x"})) is None
    assert fold(v2, ThingChanged("d", 2, thing_type="t", attributes={"a": "1"})) is None
    deleted = fold(v2, ThingChanged("d", 3, deleted=True))
    assert not deleted.exists
    # A thing created again under the same name starts over at version 1.
    recreated = fold(deleted, ThingChanged("d", 1, attributes={"new": "y"}))
    assert recreated.exists
    assert recreated.attributes == {"new": "y"}


def test_an_association_event_without_a_version_changes_nothing_by_itself():
    assert fold(DeviceView("d"), ThingChanged("d", None, thing_type="t")) is None


def test_shadows_are_versioned_per_name_and_deletes_remove_them():
    view = fold(DeviceView("d"), ShadowChanged("d", None, 5, desired={"on": True}))
    view = fold(view, ShadowChanged("d", "cfg", 1, desired={"rate": 2}))
    assert view.shadows[""] == ShadowView(5, {"on": True}, {})
    assert fold(view, ShadowChanged("d", None, 4, desired={"on": False})) is None
    view = fold(view, ShadowChanged("d", "cfg", 1, deleted=True))
    assert set(view.shadows) == {""}
    # Named shadow created again after its delete starts at version 1 again.
    assert fold(view, ShadowChanged("d", "cfg", 1, desired={"rate": 3})).shadows["cfg"].version == 1


def test_membership_events_are_ordered_by_time_because_they_carry_no_version():
    view = fold(DeviceView("d"), MembershipChanged("d", "g", added=True, at_ms=200))
    assert view.groups == {"g"}
    assert fold(view, MembershipChanged("d", "g", added=False, at_ms=100)) is None
    assert fold(view, MembershipChanged("d", "g", added=False, at_ms=300)).groups == frozenset()


@given(st.lists(st.integers(1, 30), min_size=1, max_size=30), st.randoms())
def test_shadow_updates_in_any_order_and_repeated_end_at_the_newest(versions, rnd):
    events = [ShadowChanged("d", None, v, desired={"v": v}) for v in versions]
    shuffled = events + rnd.sample(events, len(events))
    rnd.shuffle(shuffled)
    view = _apply(DeviceView("d"), shuffled)
    assert view.shadows[""].desired == {"v": max(versions)}


@given(st.lists(st.integers(1, 30), min_size=1, max_size=30))
def test_thing_updates_in_any_order_end_at_the_newest(versions):
    events = [ThingChanged("d", v, attributes={"v": str(v)}) for v in versions]
    random.Random(len(versions)).shuffle(events)
    assert _apply(DeviceView("d"), events).attributes == {"v": str(max(versions))}


def test_merge_keeps_newer_event_state_over_an_older_full_read():
    stored = DeviceView(
        "d",
        thing_version=5,
        attributes={"new": "1"},
        groups=frozenset({"late"}),
        shadows={"": ShadowView(9, {"x": 9})},
        membership_ms={"late": 2_000},
    )
    fresh = DeviceView(
        "d",
        thing_version=4,
        attributes={"old": "1"},
        groups=frozenset({"early"}),
        shadows={"": ShadowView(8, {"x": 8}), "cfg": ShadowView(1, {"y": 1})},
    )
    merged = merge(stored, fresh, read_at_ms=1_000)
    assert merged.attributes == {"new": "1"}
    assert merged.shadows[""].version == 9
    assert merged.shadows["cfg"].version == 1
    assert merged.groups == {"early", "late"}


def test_merge_takes_the_read_when_it_is_newer_and_reports_no_change_when_equal():
    stored = DeviceView("d", thing_version=1, groups=frozenset({"g"}))
    fresh = DeviceView("d", thing_version=2, attributes={"a": "b"})
    merged = merge(stored, fresh, read_at_ms=10)
    assert merged.attributes == {"a": "b"}
    assert merged.groups == frozenset()
    assert merge(merged, fresh, read_at_ms=20) is None
