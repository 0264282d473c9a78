"""A simulated device's shadow behaviour, on whichever cloud its migration agent is on.

The migration agent only moves the device; what a device does with its state is its own
application, so it lives here and rides on the agent's connections: on AWS the classic
shadow through awsiotsdk's `IotShadowClient` over the agent's MQTT 5 client, after cutover
the device twin through the agent's `IoTHubDeviceClient`. The device reports its state now
and then, and answers desired changes by reporting the desired value for the keys it knows
(`KNOWN_KEYS`), as device firmware does. At every (re)connect it reads the whole document
first and answers what changed while it was away: a delta on AWS, a desired section on the
twin, so a change made during the switch between clouds is not missed.

Every call here blocks (SDK futures and the Azure client's synchronous API): the fleet runs
them in its device threads, never on an event loop.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from awscrt import mqtt
from awsiot import iotshadow

__all__ = ["KNOWN_KEYS", "ShadowApp", "reading_state"]

KNOWN_KEYS = ("setpoint", "mode")  # desired keys the simulated firmware acts on
_TIMEOUT = 10.0
_QOS1 = mqtt.QoS.AT_LEAST_ONCE


class ShadowApp:
    """One device's shadow (AWS) or twin (Azure) traffic.

    SDK callbacks note a desired change and call `notify` (from their own threads); the
    fleet's device task then calls `answer()`. `counts` says what was done where
    (`reported/aws`, `answered/azure`...), for the fleet's report.
    """

    def __init__(self, agent: Any, notify: Callable[[], None]) -> None:
        self._agent = agent
        self._name: str = agent.settings.thing_name
        self._aws_client: Any = None  # the agent's MQTT 5 client we subscribed on
        self._shadow: iotshadow.IotShadowClient | None = None
        self._azure_client: Any = None  # the agent's IoTHubDeviceClient we listen on
        self._pending: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._notify = notify
        self.counts: Counter[str] = Counter()
        self._got: Future[Any] | None = None

    # -- what the fleet calls --------------------------------------------------------------

    def attach(self) -> str | None:
        """Follow the agent to its current cloud (subscribe, read what changed); returns the
        cloud the app is on, None when the device is on neither."""
        agent = self._agent
        if agent.cloud == "azure" and agent.azure is not None:
            if agent.azure is not self._azure_client:
                self._attach_azure(agent.azure)
            return "azure"
        if agent.aws is not None and agent._aws_up.is_set():
            if agent.aws is not self._aws_client:
                self._attach_aws(agent.aws)
            return "aws"
        return None

    def report(self, state: dict[str, Any]) -> None:
        """Report `state` on the current cloud (a no-op when on neither)."""
        cloud = self.attach()
        if cloud is None:
            return
        self._send(cloud, state)
        self.counts[f"reported/{cloud}"] += 1

    def has_pending(self) -> bool:
        """Whether a desired change waits for its answer."""
        with self._lock:
            return bool(self._pending)

    def answer(self) -> None:
        """Report the desired value of every known key that changed, on the current cloud;
        what could not be sent stays for the next call."""
        cloud = self.attach()
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            self._send(cloud, pending)
        except BaseException:
            with self._lock:  # a newer desired value that came meanwhile wins
                self._pending = pending | self._pending
            raise
        self.counts[f"answered/{cloud}"] += 1

    # -- the clouds ------------------------------------------------------------------------

    def _send(self, cloud: str | None, state: dict[str, Any]) -> None:
        if cloud is None:
            raise ConnectionError("the device is on neither cloud")
        if cloud == "azure":
            self._agent.azure.patch_twin_reported_properties(state)
            return
        assert self._shadow is not None
        request = iotshadow.UpdateShadowRequest(
            thing_name=self._name, state=iotshadow.ShadowState(reported=state)
        )
        self._shadow.publish_update_shadow(request, _QOS1).result(_TIMEOUT)

    def _desired(self, desired: dict[str, Any] | None) -> None:
        """Called from SDK threads: note the known keys and wake the device's task."""
        wanted = {k: v for k, v in (desired or {}).items() if k in KNOWN_KEYS}
        if wanted:
            with self._lock:
                self._pending.update(wanted)
            self._notify()

    def _attach_aws(self, client: Any) -> None:
        shadow = iotshadow.IotShadowClient(client)
        thing = self._name
        got: Future[Any] = Future()

        def answered(response: Any) -> None:
            if not got.done():
                got.set_result(response)

        delta = shadow.subscribe_to_shadow_delta_updated_events(
            iotshadow.ShadowDeltaUpdatedSubscriptionRequest(thing_name=thing),
            _QOS1,
            lambda event: self._desired(event.state),
        )
        accepted = shadow.subscribe_to_get_shadow_accepted(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
            _QOS1,
            answered,
        )
        rejected = shadow.subscribe_to_get_shadow_rejected(
            iotshadow.GetShadowSubscriptionRequest(thing_name=thing),
            _QOS1,
            lambda _error: answered(None),  # 404: no shadow yet
        )
        for future, _topic in (delta, accepted, rejected):
            future.result(_TIMEOUT)
        self._shadow, self._aws_client, self._got = shadow, client, got
        shadow.publish_get_shadow(iotshadow.GetShadowRequest(thing_name=thing), _QOS1).result(
            _TIMEOUT
        )
        response = got.result(_TIMEOUT)
        if response is not None and response.state is not None:
            self._desired(response.state.delta)

    def _attach_azure(self, client: Any) -> None:
        client.on_twin_desired_properties_patch_received = self._desired
        self._azure_client = client
        twin = client.get_twin()
        desired, reported = twin.get("desired", {}), twin.get("reported", {})
        self._desired({k: v for k, v in desired.items() if reported.get(k) != v})


def reading_state(sequence: int) -> dict[str, Any]:
    """What a device reports about itself now and then."""
    return {
        "temperature": round(random.uniform(18, 26), 2),  # noqa: S311 - simulated sensor
        "reports": sequence,
    }
