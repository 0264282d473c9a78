"""Finalizing: a device that stayed on Azure through the soak is done with AWS.

After `BRIDGE_CUTOVER__SOAK_SECONDS` on Azure (counted from its verdict), a cut-over device
moves to FINALIZED: the mirror, relay and reverse path leave it alone from then on. With
`BRIDGE_CUTOVER__RETIRE_CERTIFICATES`, finalizing also retires its AWS side the reversible
way: each X.509 certificate attached to the thing is set INACTIVE and its policies are
detached, and what was there is written to the store first, so `iot-bridge cutover
restore-aws DEVICE` puts it back exactly (certificate status and policies). Nothing is ever
deleted: not the thing, not the certificate, not a policy. The device keeps using the same
certificate on Azure (IoT Hub knows it by thumbprint), so retiring it on AWS does not touch
the device's connection to Azure.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bridge.aws.clients import AwsApi
from bridge.core.machine import Event, State
from bridge.core.milestones import record_finalized
from bridge.core.store import Store
from bridge.errors import Gone, WaveError
from bridge.logging import get_logger

__all__ = ["finalize_due", "restore_aws", "retired_key"]

_log = get_logger("cutover.finalize")
_CUT_OVER = "cut_over"


def retired_key(device_id: str) -> str:
    """The store checkpoint holding what finalizing changed on AWS for `device_id`."""
    return f"cutover:retired:{device_id}"


async def finalize_due(
    store: Store, iot: AwsApi, *, soak_seconds: float, retire_certificates: bool
) -> list[str]:
    """Finalize every cut-over device whose soak is over; returns the devices finalized."""
    now = time.time()
    due: dict[str, float] = {}
    for wave in await store.waves():
        for member in await store.wave_devices(wave.name):
            if member.outcome == _CUT_OVER and member.decided_at is not None:
                due[member.device_id] = member.decided_at.timestamp()
    due = {d: at for d, at in due.items() if now - at >= soak_seconds}
    if not due:
        return []
    devices = await store.get_devices(sorted(due))
    finalized = []
    for device_id, device in devices.items():
        if device.state is not State.CUT_OVER:
            continue  # finalized already, or moved on (deleted, failed) since its verdict
        if retire_certificates:
            await _retire(store, iot, device_id)
        # Recorded first: the reverse path still carries what the device sent before this
        # moment (messages in flight through IoT Hub), and nothing after it.
        await record_finalized(store, device_id, time.time())
        await store.transition(device_id, Event.FINALIZE)
        finalized.append(device_id)
        _log.info(
            "cutover.device_finalized",
            device_id=device_id,
            soaked_seconds=round(now - due[device_id]),
            certificates_retired=retire_certificates,
        )
    return finalized


async def _certificates(iot: AwsApi, thing: str) -> list[str]:
    principals = [
        arn
        async for arn in iot.pages("list_thing_principals", "principals", thingName=thing)
        if ":cert/" in arn
    ]
    return sorted(principals)


async def _retire(store: Store, iot: AwsApi, device_id: str) -> None:
    """Record, then deactivate each certificate and detach its policies."""
    key = retired_key(device_id)
    if await store.get_checkpoint(key) is not None:
        return  # a restart after recording: the record says what was there before
    record: list[dict[str, Any]] = []
    for arn in await _certificates(iot, device_id):
        certificate_id = arn.rsplit("/", 1)[-1]
        described = await iot.call("describe_certificate", certificateId=certificate_id)
        policies = [
            p["policyName"]
            async for p in iot.pages("list_attached_policies", "policies", target=arn)
        ]
        record.append(
            {
                "certificateArn": arn,
                "status": described["certificateDescription"]["status"],
                "policies": policies,
            }
        )
    await store.set_checkpoint(key, json.dumps(record))  # first: a crash can still undo
    for entry in record:
        for policy in entry["policies"]:
            await iot.call("detach_policy", policyName=policy, target=entry["certificateArn"])
        await iot.call(
            "update_certificate",
            certificateId=entry["certificateArn"].rsplit("/", 1)[-1],
            newStatus="INACTIVE",
        )
    # INFO, not WARNING: the operator asked for it (RETIRE_CERTIFICATES), and a fleet's
    # worth of warnings for the expected outcome would bury the ones that matter.
    _log.info(
        "cutover.aws_certificates_retired",
        device_id=device_id,
        certificates=len(record),
        policies_detached=sum(len(e["policies"]) for e in record),
    )


async def restore_aws(store: Store, iot: AwsApi, device_id: str) -> int:
    """Undo what finalizing changed on AWS for `device_id`; returns certificates restored."""
    key = retired_key(device_id)
    recorded = await store.get_checkpoint(key)
    if recorded is None:
        raise WaveError(
            f"{device_id}: finalizing retired nothing on AWS for this device "
            "(not finalized yet, or BRIDGE_CUTOVER__RETIRE_CERTIFICATES was off)",
            wave="-",
        )
    record = json.loads(recorded)
    for entry in record:
        arn = entry["certificateArn"]
        try:
            await iot.call(
                "update_certificate",
                certificateId=arn.rsplit("/", 1)[-1],
                newStatus=entry["status"],
            )
        except Gone:
            _log.warning("cutover.certificate_gone", device_id=device_id, certificate=arn)
            continue
        for policy in entry["policies"]:
            await iot.call("attach_policy", policyName=policy, target=arn)
    _log.warning("cutover.aws_restored", device_id=device_id, certificates=len(record))
    return len(record)
