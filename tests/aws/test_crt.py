"""The Lifeline that keeps awscrt clients alive until awscrt reports them stopped."""

import gc
import weakref

from bridge.aws.crt import Lifeline


class FakeClient:
    """Stands in for an awscrt client object: only its lifetime matters here."""


def test_client_is_held_until_stopped_then_released():
    seen = []
    before = Lifeline.held()
    lifeline = Lifeline(seen.append)
    client = FakeClient()
    gone = weakref.ref(client)
    assert lifeline.hold(client) is client
    del client
    gc.collect()
    assert gone() is not None, "released before awscrt reported the stop"
    assert Lifeline.held() == before + 1
    lifeline.stopped("stopped-event")
    gc.collect()
    assert gone() is None
    assert Lifeline.held() == before
    assert seen == ["stopped-event"]


def test_stop_without_a_listener_and_a_repeated_stop_are_harmless():
    before = Lifeline.held()
    lifeline = Lifeline()
    lifeline.hold(FakeClient())
    lifeline.stopped(None)
    lifeline.stopped(None)
    assert Lifeline.held() == before
