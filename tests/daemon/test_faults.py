"""The daemon under fire: SIGKILLed again and again, mosquitto restarted, IoT Hub throttling.

`iot-bridge run` runs as a child process (so SIGKILL is a real kill -9) while a workload
changes the AWS estate. Afterwards the independent parity check must find AWS and Azure
equal in every device, attribute, group path and shadow field, on both store backends.
"""

import asyncio
import json
import random
import signal
import threading

import aiohttp
import pytest

from tests.daemon.children import Daemon, write_bridge_env
from tests.daemon.parity import aws_clients, differences
from tests.daemon.test_run import until_parity

pytestmark = pytest.mark.timeout(600)

KILLS = 10
PREFIX = "f-"


class Workload(threading.Thread):
    """Registry and shadow changes of every kind, through boto3, until stopped."""

    def __init__(self, env, things, seed):
        super().__init__(daemon=True)
        self.iot, self.data = aws_clients(env)
        self.things = list(things)
        self.random = random.Random(seed)
        self.halt = threading.Event()
        self.done = 0
        self.error = None

    def run(self):
        try:
            while not self.halt.is_set():
                self.step()
                self.done += 1
        except Exception as exc:  # surfaced by the test
            self.error = exc

    def step(self):
        r, thing = self.random, self.random.choice(self.things)
        choice = r.randrange(7)
        if choice == 0:
            attrs = {"v": str(r.randrange(1000)), "zone": r.choice("abc")}
            self.iot.update_thing(thingName=thing, attributePayload={"attributes": attrs})
        elif choice in (1, 2):
            self._shadow(thing, {"setpoint": r.randrange(100), "mode": r.choice(["eco", "max"])})
        elif choice == 3:
            self._shadow(thing, {"rate": r.randrange(60)}, name="config")
        elif choice == 4:
            group = r.choice(["Site A", "Site B", "Region"])
            if r.random() < 0.5:
                self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
            else:
                self.iot.remove_thing_from_thing_group(thingGroupName=group, thingName=thing)
        elif choice == 5:
            name = f"{PREFIX}new-{self.done}"
            self.iot.create_thing(thingName=name, attributePayload={"attributes": {"born": "live"}})
            self.things.append(name)
        elif len(self.things) > 20:
            gone = self.things.pop(r.randrange(len(self.things)))
            self.iot.delete_thing(thingName=gone)

    def _shadow(self, thing, desired, name=None):
        body = json.dumps({"state": {"desired": desired}}).encode()
        extra = {"shadowName": name} if name else {}
        self.data.update_thing_shadow(thingName=thing, payload=body, **extra)


def _estate(env, count):
    iot, data = aws_clients(env)
    iot.create_thing_group(thingGroupName="Region")
    iot.create_thing_group(thingGroupName="Site A", parentGroupName="Region")
    iot.create_thing_group(thingGroupName="Site B", parentGroupName="Region")
    names = [f"{PREFIX}{i:04d}" for i in range(count)]
    for i, name in enumerate(names):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"i": str(i)}})
        body = json.dumps({"state": {"desired": {"setpoint": i}, "reported": {"t": i}}})
        data.update_thing_shadow(thingName=name, payload=body.encode())
    return names


async def _faults(stack, rules):
    """Replace the emulator's fault rules (none: the hub answers normally again)."""
    base = f"https://{stack.iothub.service.host}:{stack.iothub.service.port}"
    async with aiohttp.ClientSession(base) as client:
        async with client.delete("/_emulator/faults", ssl=False) as answer:
            assert answer.status < 300, await answer.text()
        for rule in rules:
            async with client.post("/_emulator/faults", json=rule, ssl=False) as answer:
                assert answer.status == 201, await answer.text()


async def test_kill_9_broker_restart_and_throttling_lose_nothing(stack, tmp_path, store_dsn):
    env = stack.env()
    dsn = store_dsn
    names = await asyncio.to_thread(_estate, env, 150)
    await _faults(stack, [{"status": 429, "fraction": 0.1}, {"status": 503, "fraction": 0.1}])
    log = (tmp_path / "daemon.log").open("w")
    daemon = Daemon(write_bridge_env(tmp_path, env, dsn), log)
    workload = Workload(env, names, seed=42)
    rnd = random.Random(7)
    try:
        daemon.start()
        # The first kills land during the initial sync, the rest during live changes (and
        # the pass each restart after a kill runs); each once the daemon is up, since a
        # kill during its imports (seconds on a busy machine) would test nothing.
        for kill in range(KILLS):
            if kill < 2:
                await daemon.until_live()
            else:
                await daemon.until_ready()
            if kill == 2:
                workload.start()
            await asyncio.sleep(rnd.uniform(0.4, 1.5) if kill < 2 else rnd.uniform(0.5, 2.5))
            daemon.kill()
            if kill == 5:
                await stack.aws.broker.restart()
            daemon.start()
        loop = asyncio.get_running_loop()
        restarted, steps = loop.time(), workload.done
        # Live churn goes on across the last restart, then stops.
        while workload.done < steps + 40 and workload.error is None and workload.is_alive():
            await asyncio.sleep(0.05)
        workload.halt.set()
        await asyncio.to_thread(workload.join, 30)
        assert workload.error is None, workload.error
        assert workload.done > 50
        await stack.aws.glue.drain()
        # Every change is made: IoT Hub stops throttling, and the daemon must converge.
        await _faults(stack, [])
        try:
            # Syncs that failed under the faults wait out their backoff (up to 60 s) first.
            await until_parity(env, PREFIX, timeout=180)
        except BaseException:
            daemon.process.send_signal(signal.SIGUSR1)  # the daemon logs where its tasks wait
            await asyncio.sleep(1)
            raise
        converged = loop.time() - restarted
        # Quoted in notes: how long after the last kill AWS and Azure matched again (this
        # includes the 40 steps of workload left after it).
        print(f"converged {converged:.1f} s after the last restart ({store_dsn.split(':')[0]})")  # noqa: T201
    finally:
        workload.halt.set()
        code = daemon.stop()
        log.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    assert await asyncio.to_thread(differences, env, PREFIX) == {}
