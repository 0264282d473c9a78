"""Folding events into a device view: versions order them, duplicates and stale ones drop."""

import random

from hypothesis import given
from hypothesis import strategies as st

from bridge.core.events import MembershipChanged, ShadowChanged, ThingChanged
from bridge.core.view import DeviceView, ShadowView, adopt, fold, merge


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
    merged = merge(stored, fresh, read_at_ms=1_000).view
    assert merged.attributes == {"new": "1"}
    assert merged.shadows[""].version == 9
    assert merged.shadows["cfg"].version == 1
    assert merged.groups == {"early", "late"}


def test_merge_takes_the_read_when_it_is_newer_and_reports_no_change_when_equal():
    stored = DeviceView("d", thing_version=1, groups=frozenset({"g"}))
    fresh = DeviceView("d", thing_version=2, attributes={"a": "b"})
    merged = merge(stored, fresh, read_at_ms=10)
    assert not merged.unsure
    assert merged.view.attributes == {"a": "b"}
    assert merged.view.groups == frozenset()
    assert merge(merged.view, fresh, read_at_ms=20).view is None


def test_a_read_from_before_a_delete_does_not_bring_the_thing_back():
    # The event said deleted (at version 3) after the read had listed the thing at 3.
    stored = DeviceView("d", exists=False, thing_version=3)
    fresh = DeviceView("d", thing_version=3, attributes={"a": "1"}, shadows={"": ShadowView(2)})
    merged = merge(stored, fresh, read_at_ms=10)
    assert merged.unsure
    assert merged.view is None or not merged.view.exists
    # A version above the delete's cannot be the deleted thing: created again, updated since.
    later = DeviceView("d", thing_version=4, attributes={"a": "2"})
    assert merge(stored, later, read_at_ms=10).view.exists


def test_a_shadow_the_read_lacks_is_kept_and_the_merge_asks_for_another_read():
    # The event created the named shadow after the read had listed the thing's shadows.
    stored = DeviceView("d", thing_version=1, shadows={"": ShadowView(4), "cfg": ShadowView(1)})
    fresh = DeviceView("d", thing_version=1, shadows={"": ShadowView(4)})
    merged = merge(stored, fresh, read_at_ms=10)
    assert merged.unsure
    assert merged.view is None  # nothing changes: the stored view is kept as it is


def test_a_shadow_deleted_after_the_read_is_not_brought_back_by_it():
    view = fold(DeviceView("d", thing_version=1), ShadowChanged("d", "cfg", 6, desired={"r": 1}))
    deleted = fold(view, ShadowChanged("d", "cfg", 6, deleted=True))
    assert deleted.deleted_shadows == {"cfg": 6}
    fresh = DeviceView("d", thing_version=1, shadows={"cfg": ShadowView(6, {"r": 1})})
    merged = merge(deleted, fresh, read_at_ms=10)
    assert merged.unsure
    assert merged.view is None
    # Created again since (AWS continues the version within 48 hours): taken.
    again = DeviceView("d", thing_version=1, shadows={"cfg": ShadowView(7, {"r": 2})})
    merged = merge(deleted, again, read_at_ms=10)
    assert not merged.unsure
    assert merged.view.shadows["cfg"].version == 7
    assert merged.view.deleted_shadows == {}


def test_adopt_takes_a_later_read_whole_and_remembers_what_it_dropped():
    stored = DeviceView("d", exists=False, thing_version=3, shadows={"cfg": ShadowView(5)})
    recreated = DeviceView("d", thing_version=1, attributes={"new": "y"})
    after = adopt(stored, recreated)
    assert (after.exists, after.thing_version, after.attributes) == (True, 1, {"new": "y"})
    assert after.shadows == {}
    assert after.deleted_shadows == {"cfg": 5}
    gone = adopt(after, DeviceView("d", exists=False))
    assert (gone.exists, gone.thing_version) == (False, 1)
    assert adopt(gone, gone) is None
    assert DeviceView.from_json(after.to_json()) == after


# A model of one AWS thing: each step changes it and yields the event AWS publishes. The
# shadow version carries on after a delete, as AWS does within 48 hours, and a thing's
# shadows outlive the thing. A read of a deleted thing finds nothing, as the reader does.
_STEPS = st.lists(
    st.sampled_from(["attrs", "delete_thing", "create_thing", "upd_a", "upd_b", "del_b"]),
    min_size=1,
    max_size=12,
)


def _history(steps):
    """What a full read sees after each step, and each step's event."""
    exists, version, attributes = True, 1, {}
    shadows, counters = {"": ShadowView(1)}, {"": 1, "b": 0}

    def read():
        if not exists:
            return DeviceView("d", exists=False)
        return DeviceView("d", thing_version=version, attributes=attributes, shadows=shadows)

    states, events = [read()], []
    for step in steps:
        event = None
        if step == "attrs" and exists:
            version += 1
            attributes = {"v": str(version)}
            event = ThingChanged("d", version, attributes=attributes)
        elif step == "delete_thing" and exists:
            exists = False
            event = ThingChanged("d", version, deleted=True)
        elif step == "create_thing" and not exists:
            exists, version, attributes = True, 1, {}
            event = ThingChanged("d", 1)
        elif step.startswith("upd") and exists:
            name = "" if step == "upd_a" else "b"
            counters[name] += 1
            shadows = {**shadows, name: ShadowView(counters[name], {"v": counters[name]})}
            event = ShadowChanged("d", name or None, counters[name], desired={"v": counters[name]})
        elif step == "del_b" and "b" in shadows:
            shadows = {"": shadows[""]}
            event = ShadowChanged("d", "b", counters["b"], deleted=True)
        if event is not None:
            states.append(read())
            events.append(event)
    return states, events


def _content(view):
    if not view.exists:
        return None
    return (view.thing_version, dict(view.attributes), dict(view.shadows))


@given(_STEPS, st.data())
def test_full_reads_never_undo_events_and_an_unsure_merge_is_settled_by_a_later_read(steps, data):
    states, events = _history(steps)
    known = data.draw(st.integers(0, len(events)), label="events folded")
    reads = data.draw(st.lists(st.integers(0, len(states) - 1), min_size=1, max_size=3))
    stored = _apply(states[0], events[:known])
    assert _content(stored) == _content(states[known])  # the model and `fold` agree
    newest = known  # the state the stored view is known to be at; None once unsure
    last_read = None
    for read in reads:
        # A later state is a later read; the ingest remembers the newest read folded in.
        merged = merge(stored, states[read], read_at_ms=read, last_read_ms=last_read)
        last_read = max(read, last_read or 0)
        stored = merged.view or stored
        if newest is None:
            continue
        if read <= newest:
            # An older (or equal) read: nothing known from newer ones may be undone.
            assert _content(stored) == _content(states[newest])
        elif merged.unsure:
            newest = None
        else:
            assert _content(stored) == _content(states[read])
            newest = read
    # The events folded late, then a read started from now on, settle everything.
    stored = _apply(stored, events[known:])
    final = adopt(stored, states[-1]) or stored
    assert _content(final) == _content(states[-1])
