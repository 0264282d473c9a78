"""The per-device migration state machine: a pure transition table, no I/O and no clock."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from bridge.errors import InvalidTransition

__all__ = [
    "DOCUMENTED_EXITS",
    "PROBLEM_STATES",
    "RELAYING_STATES",
    "REVERSE_SYNCING_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Event",
    "State",
    "allowed_events",
    "transition",
]


class State(StrEnum):
    """Where one device stands in its migration."""

    DISCOVERED = "discovered"  # seen on AWS; nothing exists on Azure yet
    PROVISIONING = "provisioning"  # Azure identity, relay module and twin being created
    MIRRORED = "mirrored"  # Azure matches AWS; telemetry relayed to Azure
    SYNCING = "syncing"  # an AWS change is being applied to Azure; still relaying
    CUTOVER_PENDING = "cutover_pending"  # picked for a wave; job not sent yet; still relaying
    CUTTING_OVER = "cutting_over"  # job sent; waiting to see the device connect to Azure
    CUT_OVER = "cut_over"  # seen connected on Azure; relay stopped, Azure reports synced back
    FINALIZED = "finalized"  # migration done; AWS side retired, nothing more to sync
    ROLLED_BACK = "rolled_back"  # did not show up on Azure in time; works on AWS, relayed again
    FAILED = "failed"  # refused (reason kept); tried again once its AWS side changes
    DELETED = "deleted"  # thing deleted on AWS and handled per the delete policy


class Event(StrEnum):
    """What can happen to a device; the engine derives these from source and target events."""

    PROVISION = "provision"  # the engine starts creating the device on Azure
    PROVISIONED = "provisioned"  # identity and twin created on Azure
    CHANGED = "changed"  # an AWS registry or shadow change needs applying to Azure
    SYNCED = "synced"  # the pending changes are applied
    SCHEDULE_CUTOVER = "schedule_cutover"  # an operator put the device in a wave
    CANCEL_CUTOVER = "cancel_cutover"  # an operator took it out before the job was sent
    JOB_SENT = "job_sent"  # the AWS IoT job telling the device to move was created
    AZURE_CONNECTED = "azure_connected"  # the device itself was seen connected on Azure
    CUTOVER_TIMED_OUT = "cutover_timed_out"  # the device did not show up on Azure in time
    JOB_FAILED = "job_failed"  # the device reported the job failed or rejected it
    FINALIZE = "finalize"  # an operator retired the AWS side of a cut-over device
    FAIL = "fail"  # an unrecoverable error; the store keeps the reason
    RETRY = "retry"  # a refused device is tried again from the top (its AWS side changed)
    DELETE = "delete"  # the thing was deleted on AWS
    REDISCOVER = "rediscover"  # a thing with a deleted device's name appeared again


_S = State
_E = Event

# Devices on the way to Azure stay in their state on CHANGED when leaving it would lose where
# they stand (the engine still applies the change); duplicates of AZURE_CONNECTED are
# self-loops because presence events arrive at least once.
_TABLE: dict[State, dict[Event, State]] = {
    _S.DISCOVERED: {_E.PROVISION: _S.PROVISIONING, _E.CHANGED: _S.DISCOVERED},
    _S.PROVISIONING: {_E.PROVISIONED: _S.MIRRORED, _E.CHANGED: _S.PROVISIONING},
    _S.MIRRORED: {_E.CHANGED: _S.SYNCING, _E.SCHEDULE_CUTOVER: _S.CUTOVER_PENDING},
    _S.SYNCING: {_E.CHANGED: _S.SYNCING, _E.SYNCED: _S.MIRRORED},
    _S.CUTOVER_PENDING: {
        _E.CHANGED: _S.CUTOVER_PENDING,
        _E.CANCEL_CUTOVER: _S.MIRRORED,
        _E.JOB_SENT: _S.CUTTING_OVER,
    },
    _S.CUTTING_OVER: {
        _E.CHANGED: _S.CUTTING_OVER,
        _E.AZURE_CONNECTED: _S.CUT_OVER,
        _E.CUTOVER_TIMED_OUT: _S.ROLLED_BACK,
        _E.JOB_FAILED: _S.ROLLED_BACK,
    },
    _S.CUT_OVER: {
        _E.CHANGED: _S.CUT_OVER,
        _E.AZURE_CONNECTED: _S.CUT_OVER,
        _E.FINALIZE: _S.FINALIZED,
    },
    _S.FINALIZED: {},
    # A rolled-back device is mirrored and relayed like a MIRRORED one, but stays ROLLED_BACK
    # on a change (the engine still applies it): it keeps its reason and the operator's
    # attention until it is put in a wave again. A late arrival on Azure is still an
    # arrival, so the device's own connection wins over the timeout.
    _S.ROLLED_BACK: {
        _E.CHANGED: _S.ROLLED_BACK,
        _E.SCHEDULE_CUTOVER: _S.CUTOVER_PENDING,
        _E.AZURE_CONNECTED: _S.CUT_OVER,
    },
    _S.FAILED: {_E.RETRY: _S.DISCOVERED},
    _S.DELETED: {_E.REDISCOVER: _S.DISCOVERED},
}
for _state, _moves in _TABLE.items():
    if _state not in {_S.FINALIZED, _S.DELETED}:
        _moves[_E.FAIL] = _S.FAILED
    if _state is not _S.DELETED:
        _moves[_E.DELETE] = _S.DELETED

TRANSITIONS: Mapping[State, Mapping[Event, State]] = MappingProxyType(
    {state: MappingProxyType(moves) for state, moves in _TABLE.items()}
)
"""state -> event -> next state; an event missing from a state's map is invalid there."""

RELAYING_STATES = frozenset(
    {_S.MIRRORED, _S.SYNCING, _S.CUTOVER_PENDING, _S.CUTTING_OVER, _S.ROLLED_BACK}
)
"""Devices whose AWS telemetry the bridge relays to Azure (the device is not on Azure yet)."""

REVERSE_SYNCING_STATES = frozenset({_S.CUT_OVER})
"""Devices on Azure whose reports the bridge writes back to AWS for AWS-side consumers."""

PROBLEM_STATES = frozenset({_S.FAILED, _S.ROLLED_BACK})
"""States that carry a reason and that an operator should look at."""

TERMINAL_STATES = frozenset({_S.FINALIZED, _S.DELETED, _S.FAILED})
"""States the bridge never leaves on its own; DOCUMENTED_EXITS lists the only ways out."""

DOCUMENTED_EXITS: Mapping[State, frozenset[Event]] = MappingProxyType(
    {
        _S.FINALIZED: frozenset({_E.DELETE}),  # the delete policy still applies
        _S.DELETED: frozenset({_E.REDISCOVER}),  # a new thing under the same name
        _S.FAILED: frozenset({_E.RETRY, _E.DELETE, _E.FAIL}),  # FAIL again updates the reason
    }
)


def allowed_events(state: State) -> frozenset[Event]:
    """Return the events that are valid in `state`."""
    return frozenset(TRANSITIONS[state])


def transition(state: State, event: Event, *, device_id: str = "?") -> State:
    """Return the state `event` leads to from `state`, or raise `InvalidTransition`."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise InvalidTransition(device_id, str(state), str(event)) from None
