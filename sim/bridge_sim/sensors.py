"""A few of the estate's devices send readings as themselves, so its rules' routes carry traffic.

The estate's topic rules (`SENSOR/THING`, `WHERE value <> -1`) have IoT Hub routes in the
plan; without traffic the rehearsal's route check would judge them on nothing. Each chosen
device connects to the AWS stand-in with its own certificate over mutual TLS (client id =
thing name, as its policy demands) and publishes readings, the last of them `-1`, which the
AWS rule drops and so the route's condition must drop too. The relay carries all of them to
IoT Hub while the devices are mirrored; the route check then compares each endpoint with
what the AWS rule would have sent there.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import aiomqtt

from bridge.mapping.topics import TOPIC_PROPERTY
from bridge_sim.estate import Device, Estate
from bridge_sim.iothub.eventhub.log import EventLog
from bridge_sim.pki import IssuedCertificate

__all__ = ["FILTERED_VALUE", "SensorReadings", "pick_devices", "publish_readings"]

FILTERED_VALUE = -1  # the estate's rules drop readings with this value (`WHERE value <> -1`)
_TIMEOUT = 60.0


def pick_devices(estate: Estate, per_type: int = 2) -> list[Device]:
    """The first `per_type` devices of each sensor type that has a rule (not the legacy one)."""
    chosen: dict[str, list[Device]] = {}
    for device in estate.devices.values():
        if device.sensor_type == "legacy":
            continue
        picked = chosen.setdefault(device.sensor_type, [])
        if len(picked) < per_type:
            picked.append(device)
    return [device for picked in chosen.values() for device in picked]


class SensorReadings:
    """What was published, by topic, to be found again on IoT Hub."""

    def __init__(self) -> None:
        self.published: dict[str, int] = {}  # topic -> readings published there

    @property
    def total(self) -> int:
        return sum(self.published.values())

    def relayed(self, events: EventLog) -> int:
        """How many of them IoT Hub holds, stamped with their AWS topic by the relay."""
        return sum(
            1
            for event in events.retained()
            if event.properties.get(TOPIC_PROPERTY) in self.published
        )


def _tls(device: Device, root_ca: str, folder: Path) -> ssl.SSLContext:
    issued = IssuedCertificate(device.certificate_pem, device.private_key_pem)
    cert, key = issued.write(folder, device.thing_name)
    context = ssl.create_default_context(cafile=root_ca)
    context.load_cert_chain(cert, key)
    return context


async def _publish(
    device: Device, env: Mapping[str, str], folder: Path, values: Iterable[float]
) -> int:
    host, _, port = env["AWS_IOT_DATA_ENDPOINT"].rpartition(":")
    context = _tls(device, env["AWS_IOT_ROOT_CA"], folder)
    sent = 0
    async with aiomqtt.Client(
        host, int(port), identifier=device.thing_name, tls_context=context
    ) as client:
        for value in values:
            body = {"value": value, "unit": "si", "site": device.site}
            await client.publish(device.topic, json.dumps(body).encode(), qos=1)
            sent += 1
    return sent


async def publish_readings(
    devices: list[Device],
    env: Mapping[str, str],
    folder: Path,
    events: EventLog,
    alive: Callable[[], None],
) -> SensorReadings:
    """Each device publishes two readings and a filtered one; returns once IoT Hub has
    them all (relayed), or raises TimeoutError after a minute."""
    readings = SensorReadings()
    for n, device in enumerate(devices):
        values = (20.0 + n, 21.5 + n, FILTERED_VALUE)
        readings.published[device.topic] = await _publish(device, env, folder, values)
    started = time.monotonic()
    while readings.relayed(events) < readings.total:
        alive()
        if time.monotonic() - started > _TIMEOUT:
            found = readings.relayed(events)
            msg = f"{found} of {readings.total} sensor readings reached IoT Hub in {_TIMEOUT:.0f} s"
            raise TimeoutError(msg)
        await asyncio.sleep(0.2)
    # The devices' keys are theirs: not left lying around.
    await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
    return readings
