"""merge: several streams as one, read no faster than the consumer takes items."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bridge.core.streams import merge
from bridge.relay.service import relay_sessions


async def numbers(name: str, count: int, taken: list[str]) -> AsyncIterator[str]:
    for n in range(count):
        taken.append(f"{name}{n}")
        yield f"{name}{n}"
        await asyncio.sleep(0)


async def test_every_item_of_every_stream_arrives_in_each_streams_order() -> None:
    taken: list[str] = []
    got = [item async for item in merge([numbers("a", 50, taken), numbers("b", 30, taken)])]
    assert sorted(got) == sorted([f"a{n}" for n in range(50)] + [f"b{n}" for n in range(30)])
    assert [x for x in got if x[0] == "a"] == [f"a{n}" for n in range(50)]
    assert [x for x in got if x[0] == "b"] == [f"b{n}" for n in range(30)]
    # Taken in turn while both have items: a busy stream cannot starve the other.
    assert got[:20] == [f"{name}{n}" for n in range(10) for name in "ab"]


async def test_a_stream_is_read_at_most_two_items_ahead_of_the_consumer() -> None:
    taken: list[str] = []
    merged = merge([numbers("a", 1000, taken), numbers("b", 1000, taken)])
    first = await anext(merged)
    for _ in range(20):
        await asyncio.sleep(0)  # let the pumps run as far as they may
    # One item handed over; per stream one in its slot and one its pump holds: no more.
    assert first in taken
    assert len(taken) <= 5
    await merged.aclose()


async def test_a_failing_stream_fails_the_merge_and_the_others_stop() -> None:
    taken: list[str] = []

    async def broken() -> AsyncIterator[str]:
        yield "x0"
        raise ConnectionError("gone")

    endless = numbers("a", 10**9, taken)
    with pytest.raises(ConnectionError, match="gone"):
        async for _item in merge([broken(), endless]):
            pass
    before = len(taken)
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(taken) == before  # the other stream's pump was cancelled


async def test_one_stream_passes_straight_through() -> None:
    taken: list[str] = []
    assert [x async for x in merge([numbers("a", 3, taken)])] == ["a0", "a1", "a2"]


def test_one_session_keeps_its_id_and_several_share_a_group() -> None:
    assert relay_sessions("br-relay", 1, None) == [("br-relay", None)]
    assert relay_sessions("br-relay", 1, "g") == [("br-relay", "g")]
    assert relay_sessions("br-relay", 3, None) == [
        ("br-relay-0", "br-relay"),
        ("br-relay-1", "br-relay"),
        ("br-relay-2", "br-relay"),
    ]
    assert relay_sessions("a/b+c", 2, "grp") == [("a/b+c-0", "grp"), ("a/b+c-1", "grp")]
    assert relay_sessions("a/b+c", 2, None)[0][1] == "a_b_c"
