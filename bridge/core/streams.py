"""Several async streams read as one, fairly, each no faster than the consumer takes items.

The relay reads one AWS session per slice of AWS's per-connection quota; its engine takes
one stream. Each stream gets a slot of one item, and the consumer takes from the slots in
turn: a stream whose item waits is not read again (so its messages stay unacknowledged at
the broker) until the engine took that item, and a busy stream cannot starve a quieter one
(one shared queue would: the stream that just handed over an item refills it before the
one woken for the slot gets to run). Written here rather than taken from a library
(aiostream) because these lines are all the relay needs from one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["merge"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Item(Generic[T]):
    value: T


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()
_Slot = asyncio.Queue  # of one _Item, _Failed or _END


async def merge(streams: Sequence[AsyncIterable[T]]) -> AsyncIterator[T]:
    """Items of every stream as they come, streams in turn; ends when all end, raises
    what one raised (and stops reading the others)."""
    if len(streams) == 1:
        async for value in streams[0]:
            yield value
        return
    ready = asyncio.Event()
    slots: list[_Slot[object]] = [asyncio.Queue(maxsize=1) for _ in streams]
    pumps = [
        asyncio.create_task(_pump(stream, slot, ready), name="streams.merge")
        for stream, slot in zip(streams, slots, strict=True)
    ]
    live, turn = len(slots), 0
    try:
        while live:
            got = _take(slots, turn)
            if got is None:
                ready.clear()  # every slot is empty: wait for a pump to fill one
                await ready.wait()
                continue
            turn, item = got
            if isinstance(item, _Item):
                yield item.value
            elif isinstance(item, _Failed):
                raise item.error
            else:
                live -= 1
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


def _take(slots: list[_Slot[object]], turn: int) -> tuple[int, object] | None:
    """The first filled slot from `turn` on, and the turn after it; None if all are empty."""
    for offset in range(len(slots)):
        index = (turn + offset) % len(slots)
        if not slots[index].empty():
            return (index + 1) % len(slots), slots[index].get_nowait()
    return None


async def _pump(stream: AsyncIterable[T], slot: _Slot[object], ready: asyncio.Event) -> None:
    try:
        async for value in stream:
            await slot.put(_Item(value))
            ready.set()
    except Exception as exc:
        await slot.put(_Failed(exc))
    else:
        await slot.put(_END)
    ready.set()
