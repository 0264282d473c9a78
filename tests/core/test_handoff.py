"""LoopHandoff: calls from SDK threads reach the event loop in order, many per wake-up."""

from __future__ import annotations

import asyncio
import threading

from bridge.core.handoff import LoopHandoff


async def test_calls_from_many_threads_all_run_on_the_loop_in_each_threads_order() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    seen: dict[int, list[int]] = {}
    on_loop_thread: list[bool] = []
    per_thread, threads = 5_000, 4
    done = asyncio.Event()

    def record(sender: int, n: int) -> None:
        on_loop_thread.append(threading.get_ident() == loop_thread)
        seen.setdefault(sender, []).append(n)
        if sum(map(len, seen.values())) == per_thread * threads:
            done.set()

    def produce(sender: int) -> None:
        for n in range(per_thread):
            handoff.post(record, sender, n)

    loop_thread = threading.get_ident()
    workers = [threading.Thread(target=produce, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    await asyncio.wait_for(done.wait(), 60)
    for worker in workers:
        worker.join()
    assert all(on_loop_thread)
    assert seen == {i: list(range(per_thread)) for i in range(threads)}


async def test_calls_posted_while_the_loop_is_busy_share_one_wake_up() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    wake_ups = 0
    original = loop.call_soon_threadsafe

    def counting(callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal wake_ups
        wake_ups += 1
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        ran: list[int] = []
        # The loop is busy in this coroutine while the thread posts: one wake-up for all.
        thread = threading.Thread(target=lambda: [handoff.post(ran.append, n) for n in range(500)])
        thread.start()
        thread.join()
        assert wake_ups == 1
        while len(ran) < 500:
            await asyncio.sleep(0)
        assert ran == list(range(500))
        # Once the loop took them, the next post wakes it again: nothing is stranded.
        threading.Thread(target=handoff.post, args=(ran.append, 500)).start()
        while len(ran) < 501:
            await asyncio.sleep(0.001)
        assert wake_ups == 2
    finally:
        del loop.call_soon_threadsafe


async def test_a_failing_callback_is_reported_and_the_rest_still_run() -> None:
    loop = asyncio.get_running_loop()
    handoff = LoopHandoff(loop)
    reported: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["exception"]))
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("boom")

    handoff.post(ran.append, "before")
    handoff.post(fail)
    handoff.post(ran.append, "after")
    while len(ran) < 2:
        await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert ran == ["before", "after"]
    assert [str(exc) for exc in reported] == ["boom"]


def test_posting_to_a_closed_loop_is_dropped_quietly() -> None:
    loop = asyncio.new_event_loop()
    handoff = LoopHandoff(loop)
    loop.close()
    handoff.post(print, "nobody is left to tell")  # no RuntimeError from an SDK thread
    handoff.post(print, "still nobody")
