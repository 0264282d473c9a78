from collections import deque

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bridge.core.machine import (
    DOCUMENTED_EXITS,
    RELAYING_STATES,
    REVERSE_SYNCING_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Event,
    State,
    allowed_events,
    transition,
)
from bridge.errors import InvalidTransition

HAPPY_PATH = [
    (State.DISCOVERED, Event.PROVISION, State.PROVISIONING),
    (State.PROVISIONING, Event.PROVISIONED, State.MIRRORED),
    (State.MIRRORED, Event.CHANGED, State.SYNCING),
    (State.SYNCING, Event.CHANGED, State.SYNCING),
    (State.SYNCING, Event.SYNCED, State.MIRRORED),
    (State.MIRRORED, Event.SCHEDULE_CUTOVER, State.CUTOVER_PENDING),
    (State.CUTOVER_PENDING, Event.JOB_SENT, State.CUTTING_OVER),
    (State.CUTTING_OVER, Event.AZURE_CONNECTED, State.CUT_OVER),
    (State.CUT_OVER, Event.FINALIZE, State.FINALIZED),
]

OTHER_PATHS = [
    (State.CUTTING_OVER, Event.CUTOVER_TIMED_OUT, State.ROLLED_BACK),
    (State.CUTTING_OVER, Event.JOB_FAILED, State.ROLLED_BACK),
    (State.ROLLED_BACK, Event.CHANGED, State.ROLLED_BACK),
    (State.ROLLED_BACK, Event.SCHEDULE_CUTOVER, State.CUTOVER_PENDING),
    (State.ROLLED_BACK, Event.AZURE_CONNECTED, State.CUT_OVER),
    (State.CUTOVER_PENDING, Event.CANCEL_CUTOVER, State.MIRRORED),
    (State.CUT_OVER, Event.AZURE_CONNECTED, State.CUT_OVER),
    (State.MIRRORED, Event.FAIL, State.FAILED),
    (State.FAILED, Event.RETRY, State.DISCOVERED),
    (State.FINALIZED, Event.DELETE, State.DELETED),
    (State.DELETED, Event.REDISCOVER, State.DISCOVERED),
]

INVALID = [
    (State.DISCOVERED, Event.AZURE_CONNECTED),
    (State.MIRRORED, Event.AZURE_CONNECTED),  # only a device sent a job can cut over
    (State.CUTOVER_PENDING, Event.AZURE_CONNECTED),
    (State.CUTTING_OVER, Event.SYNCED),
    (State.MIRRORED, Event.SYNCED),
    (State.SYNCING, Event.SCHEDULE_CUTOVER),
    (State.FINALIZED, Event.FAIL),
    (State.FINALIZED, Event.CHANGED),
    (State.DELETED, Event.DELETE),
    (State.FAILED, Event.CHANGED),
]


@pytest.mark.parametrize(("state", "event", "expected"), HAPPY_PATH + OTHER_PATHS)
def test_valid_transitions(state, event, expected):
    assert transition(state, event) is expected
    assert event in allowed_events(state)


@pytest.mark.parametrize(("state", "event"), INVALID)
def test_invalid_transitions_raise_with_context(state, event):
    with pytest.raises(InvalidTransition) as caught:
        transition(state, event, device_id="thing-1")
    assert (caught.value.device_id, caught.value.current, caught.value.event) == (
        "thing-1",
        state.value,
        event.value,
    )


def test_every_state_has_a_row_and_fail_and_delete_reach_everywhere_they_should():
    assert set(TRANSITIONS) == set(State)
    for state in set(State) - {State.FINALIZED, State.DELETED}:
        assert transition(state, Event.FAIL) is State.FAILED
    for state in set(State) - {State.DELETED}:
        assert transition(state, Event.DELETE) is State.DELETED


def test_every_state_is_reachable_from_discovered():
    seen = {State.DISCOVERED}
    queue = deque(seen)
    while queue:
        for target in TRANSITIONS[queue.popleft()].values():
            if target not in seen:
                seen.add(target)
                queue.append(target)
    assert seen == set(State)


def test_cut_over_is_entered_only_on_azure_connected():
    entries = {
        event
        for state, moves in TRANSITIONS.items()
        for event, target in moves.items()
        if target is State.CUT_OVER and state is not State.CUT_OVER
    }
    assert entries == {Event.AZURE_CONNECTED}


def test_terminal_states_leave_only_through_documented_exits():
    for state in TERMINAL_STATES:
        leaving = {event for event, target in TRANSITIONS[state].items() if target is not state}
        assert leaving <= DOCUMENTED_EXITS[state]


def test_relaying_and_reverse_syncing_do_not_overlap():
    assert not RELAYING_STATES & REVERSE_SYNCING_STATES
    assert State.CUTTING_OVER in RELAYING_STATES  # still on AWS until seen on Azure
    assert State.FINALIZED not in RELAYING_STATES | REVERSE_SYNCING_STATES


def test_table_is_read_only():
    with pytest.raises(TypeError):
        TRANSITIONS[State.FINALIZED][Event.RETRY] = State.DISCOVERED  # type: ignore[index]


class DeviceLifecycle(RuleBasedStateMachine):
    """Drives random event sequences through the table and checks its invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.state = State.DISCOVERED
        self.visited = {self.state}

    @rule(event=st.sampled_from(Event))
    def apply(self, event):
        before = self.state
        try:
            after = transition(before, event, device_id="d")
        except InvalidTransition:
            assert event not in allowed_events(before)
            return
        assert event in allowed_events(before)
        if after is State.CUT_OVER and before is not State.CUT_OVER:
            assert event is Event.AZURE_CONNECTED
        if before in TERMINAL_STATES and after is not before:
            assert event in DOCUMENTED_EXITS[before]
        self.state = after
        self.visited.add(after)

    @rule(data=st.data())
    def apply_an_allowed_event(self, data):
        # Bias toward valid moves so long paths (cutover, rollback, retry) are explored too.
        moves = sorted(allowed_events(self.state))
        if moves:
            self.apply(data.draw(st.sampled_from(moves)))

    @invariant()
    def state_is_known(self):
        assert self.state in TRANSITIONS


TestDeviceLifecycle = DeviceLifecycle.TestCase
