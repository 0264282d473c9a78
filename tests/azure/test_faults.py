"""Retries against faults injected through the emulator's control API, and TLS trust."""

from __future__ import annotations

import asyncio

import pytest

from bridge.azure import (
    DeviceIdentity,
    HubConnectionError,
    HubError,
    HubStats,
    HubThrottled,
    IotHubService,
    NotFound,
    Operation,
    RetryPolicy,
)
from tests.azure.conftest import FAST_RETRY, control, rest_statuses


@pytest.fixture
async def patient(env, stats):
    """A client whose 12 attempts make a call failing 12 times in a row (p < 1e-6) unlikely."""
    retry = RetryPolicy(attempts=12, base_delay=0.005, max_delay=0.05)
    async with IotHubService(
        env["IOTHUB_CONNECTION_STRING"], retry=retry, stats=stats, ca_bundle=env["IOTHUB_ROOT_CA"]
    ) as service:
        yield service


async def test_every_call_succeeds_through_429s_and_503s(patient, stats, hub, rm):
    # About 28% of requests fail: 15% with 429, then 15% of the rest with 503.
    control(hub, "POST", "faults", {"status": 429, "fraction": 0.15})
    control(hub, "POST", "faults", {"status": 503, "fraction": 0.15})
    events: list[tuple[str, Operation]] = []
    stats.listener = lambda event, operation: events.append((event, operation))
    service = patient

    async def one_device(n: int) -> None:
        device_id = f"f-{n:03d}"
        await service.create_or_update_device(DeviceIdentity(device_id))
        await service.replace_twin(device_id, {"n": n}, {"d": n})
        await service.update_twin(device_id, tags={"m": n})
        assert (await service.get_twin(device_id)).tags == {"n": n, "m": n}

    await asyncio.gather(*(one_device(n) for n in range(60)))
    rows = [row async for row in service.query("SELECT * FROM devices", page_size=10)]

    control(hub, "DELETE", "faults")
    assert len(rows) == 60
    assert len(await asyncio.to_thread(rm.get_devices)) == 60
    throttled, unavailable = rest_statuses(hub, 429), rest_statuses(hub, 503)
    assert throttled > 0
    assert unavailable > 0
    assert sum(stats.throttled.values()) == throttled
    assert sum(stats.retries.values()) == throttled + unavailable
    assert sum(stats.failures.values()) == 0
    assert events.count(("retry", Operation.TWIN_UPDATE)) == stats.retries[Operation.TWIN_UPDATE]


async def test_retries_are_bounded_then_the_throttle_is_raised(service, stats, hub):
    control(hub, "POST", "faults", {"status": 429, "count": FAST_RETRY.attempts})

    with pytest.raises(HubThrottled) as throttled:
        await service.get_twin("anyone")

    assert (throttled.value.status, throttled.value.code) == (429, "ThrottlingException")
    assert stats.requests[Operation.TWIN_READ] == FAST_RETRY.attempts
    assert stats.retries[Operation.TWIN_READ] == FAST_RETRY.attempts - 1
    assert stats.failures[Operation.TWIN_READ] == 1


async def test_server_errors_end_in_a_hub_error(service, hub):
    control(hub, "POST", "faults", {"status": 500, "count": 100})

    with pytest.raises(HubError) as failed:
        await service.get_device("anyone")

    assert (failed.value.status, failed.value.code) == (500, "ServerError")
    assert rest_statuses(hub, 500) == FAST_RETRY.attempts


async def test_other_client_errors_are_not_retried(service, stats, hub):
    control(hub, "POST", "faults", {"status": 403, "code": "IotHubQuotaExceeded", "count": 1})

    with pytest.raises(HubError) as refused:
        await service.create_or_update_device(DeviceIdentity("x"))

    assert (refused.value.status, refused.value.code) == (403, "IotHubQuotaExceeded")
    assert sum(stats.retries.values()) == 0
    with pytest.raises(NotFound):
        await service.get_device("x")


async def test_a_dead_hub_is_a_connection_error_after_the_retries(env):
    stats = HubStats()
    # Port 1 on loopback: nothing listens, every attempt is refused.
    connection = "HostName=127.0.0.1:1;" + env["IOTHUB_CONNECTION_STRING"].split(";", 1)[1]
    async with IotHubService(
        connection,
        retry=RetryPolicy.instant(attempts=3),
        stats=stats,
        ca_bundle=env["IOTHUB_ROOT_CA"],
    ) as service:
        with pytest.raises(HubConnectionError, match="GET /devices/d1"):
            await service.get_device("d1")
    assert stats.requests[Operation.IDENTITY_REGISTRY] == 3


async def test_tls_verification_fails_without_the_emulator_ca(env, stats):
    async with IotHubService(env["IOTHUB_CONNECTION_STRING"], stats=stats) as service:
        with pytest.raises(HubConnectionError, match="TLS verification") as untrusted:
            await service.get_device("d1")

    assert "ca_bundle" in str(untrusted.value)
    assert "SharedAccessKey" not in str(untrusted.value)
    assert sum(stats.retries.values()) == 0
