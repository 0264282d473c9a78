"""Stand-ins for the engine's own ports (unit tests only; the adapters are tested for real)."""

import asyncio
import hashlib
import json
import random
import time

from bridge.core.ports import DeletePolicy, Delivery
from bridge.errors import Rejected


class MemoryTarget:
    """A target that keeps twins in a dict and can fail on demand."""

    def __init__(self, *, fail_share=0.0, seed=0, reject=()):
        self.twins = {}
        self.removed = {}
        self.writes = 0
        self.imports = 0
        self._fail_share = fail_share
        self._random = random.Random(seed)
        self._reject = set(reject)

    @staticmethod
    def document(view, paths):
        return {
            "type": view.thing_type,
            "attributes": dict(view.attributes),
            "groups": sorted(paths.values()),
            "desired": {name: dict(s.desired) for name, s in view.shadows.items()},
        }

    def fingerprint(self, view, group_paths):
        text = json.dumps(self.document(view, group_paths), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def same(self, written, observed):
        return written == observed

    async def apply(self, view, group_paths, *, create, previous=None):  # noqa: ARG002
        await asyncio.sleep(0)
        if view.device_id in self._reject:
            raise Rejected("twin desired would be 40000 bytes, over IoT Hub's 32768")
        if self._random.random() < self._fail_share:
            raise ConnectionError("503 Service Unavailable")
        if not create and view.device_id not in self.twins:
            raise RuntimeError("device not found")
        self.twins[view.device_id] = self.document(view, group_paths)
        self.removed.pop(view.device_id, None)
        self.writes += 1
        return self.fingerprint(view, group_paths)

    async def import_devices(self, items):
        self.imports += 1
        results = {}
        for view, paths in items:
            if view.device_id in self._reject:
                results[view.device_id] = Rejected("too large")
                continue
            self.twins[view.device_id] = self.document(view, paths)
            results[view.device_id] = self.fingerprint(view, paths)
        return results

    async def remove(self, device_id, policy):
        assert isinstance(policy, DeletePolicy)
        self.twins.pop(device_id, None)
        self.removed[device_id] = policy

    async def observed(self):
        for device_id, document in list(self.twins.items()):
            text = json.dumps(document, sort_keys=True)
            yield device_id, hashlib.sha256(text.encode()).hexdigest()


class GatedTarget(MemoryTarget):
    """Holds every write until the gate opens, so its claims stay in flight."""

    def __init__(self):
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = set()

    async def apply(self, view, group_paths, *, create, previous=None):
        self.waiting.add(view.device_id)
        await self.gate.wait()
        return await super().apply(view, group_paths, create=create, previous=previous)


class ScriptedSource:
    """A source fed by the test; records what was acked."""

    def __init__(self):
        self.queue = asyncio.Queue()
        self.acked = []
        self.connected = True

    def push(self, event, *, topic="t", payload=b"{}", error=None):
        ident = len(self.acked) + self.queue.qsize()
        self.queue.put_nowait(
            Delivery(
                topic=topic,
                payload=payload,
                event=event,
                error=error,
                ack=lambda: self.acked.append(ident),
                received_at=time.monotonic(),
            )
        )

    async def deliveries(self):
        while True:
            yield await self.queue.get()


class MemoryReader:
    """A source reader over dicts the test edits."""

    def __init__(self, views=None, parents=None):
        self.views = dict(views or {})
        self.parents = dict(parents or {})

    async def read_device(self, device_id):
        return self.views.get(device_id)

    async def read_groups(self):
        return dict(self.parents)

    async def snapshot(self):
        for view in list(self.views.values()):
            yield view
