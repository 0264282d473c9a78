"""AckValve: PUBACKs go at the engine's pace, one at a time while messages wait."""

from bridge.aws.inbox import AckValve, Arrival, Inbox


def _arrival(n: int) -> Arrival:
    return Arrival(f"t/{n}", b"", handle=n, received_at=0.0, connection=1)


def test_one_held_puback_goes_per_arrival_while_messages_wait() -> None:
    inbox = Inbox(limit=5)
    sent: list[object] = []
    valve = AckValve(inbox, sent.append)
    for n in range(4):
        inbox.put(_arrival(n))
        valve.arrived()
    for handle in ("a", "b", "c"):
        valve.ack(handle)  # stored by the engine, held: messages still wait
    assert sent == []
    inbox._items.popleft()
    valve.taken()
    assert sent == ["a"]
    # The broker has not answered that PUBACK yet: taking more lets nothing else go, or a
    # broker that lets a Receive Maximum through per PUBACK would flood the inbox.
    inbox._items.popleft()
    valve.taken()
    assert sent == ["a"]
    inbox.put(_arrival(9))
    valve.arrived()
    inbox._items.popleft()
    valve.taken()
    assert sent == ["a", "b"]
    # Once nothing waits, every held PUBACK goes.
    while len(inbox):
        inbox._items.popleft()
    valve.taken()
    assert sent == ["a", "b", "c"]


def test_a_lost_connection_forgets_held_pubacks_and_the_pacing() -> None:
    inbox = Inbox(limit=5)
    sent: list[object] = []
    valve = AckValve(inbox, sent.append)
    for n in range(3):
        inbox.put(_arrival(n))
    valve.ack("a")
    valve.ack("b")
    inbox._items.popleft()
    valve.taken()
    assert sent == ["a"]
    valve.forget()
    valve.ack("c")
    inbox._items.popleft()
    valve.taken()
    assert sent == ["a", "c"]
