"""Devices and modules written by the client, read back through Microsoft's azure-iot-hub."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from msrest.exceptions import HttpOperationError

from bridge.azure import (
    CertificateAuthorityAuth,
    DeviceIdentity,
    HubError,
    NotFound,
    PreconditionFailed,
    SasAuth,
    X509Thumbprints,
)

SHA256 = hashlib.sha256(b"device certificate DER").hexdigest()
SHA1 = hashlib.sha1(b"device certificate DER", usedforsecurity=False).hexdigest()
KEY_A = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
KEY_B = "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="


async def test_thumbprint_device_is_what_the_sdk_reads(service, rm):
    created = await service.create_or_update_device(
        DeviceIdentity("thing-1", X509Thumbprints(SHA256, SHA1))
    )

    seen = await asyncio.to_thread(rm.get_device, "thing-1")
    assert seen.authentication.type == "selfSigned"
    assert seen.authentication.x509_thumbprint.primary_thumbprint == SHA256.upper()
    assert seen.authentication.x509_thumbprint.secondary_thumbprint == SHA1.upper()
    assert seen.status == "enabled"
    assert seen.etag == created.etag
    assert created.auth == X509Thumbprints(SHA256, SHA1)


async def test_ca_device_disabled_with_reason(service, rm):
    await service.create_or_update_device(
        DeviceIdentity(
            "thing-ca", CertificateAuthorityAuth(), status="disabled", status_reason="wave 3"
        )
    )

    seen = await asyncio.to_thread(rm.get_device, "thing-ca")
    assert seen.authentication.type == "certificateAuthority"
    assert (seen.status, seen.status_reason) == ("disabled", "wave 3")


async def test_sas_keys_generated_by_the_hub_and_kept_on_update(service, rm):
    created = await service.create_or_update_device(DeviceIdentity("thing-sas"))
    assert isinstance(created.auth, SasAuth)
    assert created.auth.primary_key
    assert created.auth.secondary_key
    assert created.auth.primary_key not in repr(created)

    updated = await service.create_or_update_device(DeviceIdentity("thing-sas", status="disabled"))

    seen = await asyncio.to_thread(rm.get_device, "thing-sas")
    assert seen.status == "disabled"
    assert seen.authentication.symmetric_key.primary_key == created.auth.primary_key
    assert seen.authentication.symmetric_key.secondary_key == created.auth.secondary_key
    assert updated.etag == seen.etag != created.etag


async def test_given_sas_keys_are_written(service, rm):
    await service.create_or_update_device(DeviceIdentity("thing-keys", SasAuth(KEY_A, KEY_B)))

    seen = await asyncio.to_thread(rm.get_device, "thing-keys")
    assert seen.authentication.symmetric_key.primary_key == KEY_A
    assert seen.authentication.symmetric_key.secondary_key == KEY_B


async def test_switching_auth_from_sas_to_thumbprint(service, rm):
    await asyncio.to_thread(rm.create_device_with_sas, "thing-2", "", "", "enabled")

    await service.create_or_update_device(DeviceIdentity("thing-2", X509Thumbprints(SHA256)))

    seen = await asyncio.to_thread(rm.get_device, "thing-2")
    assert seen.authentication.type == "selfSigned"
    assert seen.authentication.x509_thumbprint.primary_thumbprint == SHA256.upper()


async def test_update_with_a_stale_etag_is_refused(service):
    first = await service.create_or_update_device(DeviceIdentity("thing-3"))
    await service.create_or_update_device(DeviceIdentity("thing-3", status="disabled"))

    with pytest.raises(PreconditionFailed) as refused:
        await service.create_or_update_device(DeviceIdentity("thing-3"), etag=first.etag)
    assert (refused.value.status, refused.value.code) == (412, "PreconditionFailed")
    assert refused.value.device_id == "thing-3"
    assert (await service.get_device("thing-3")).status == "disabled"


async def test_get_missing_device_is_not_found(service):
    with pytest.raises(NotFound) as missing:
        await service.get_device("nobody")
    assert missing.value.code == "DeviceNotFound"


async def test_delete_is_idempotent(service, rm, stats):
    await service.create_or_update_device(DeviceIdentity("thing-4"))

    assert await service.delete_device("thing-4") is True
    assert await service.delete_device("thing-4") is False

    with pytest.raises(HttpOperationError):
        await asyncio.to_thread(rm.get_device, "thing-4")
    assert sum(stats.failures.values()) == 0


async def test_delete_with_a_stale_etag_is_refused(service):
    first = await service.create_or_update_device(DeviceIdentity("thing-5"))
    await service.create_or_update_device(DeviceIdentity("thing-5", status="disabled"))

    with pytest.raises(PreconditionFailed):
        await service.delete_device("thing-5", etag=first.etag)
    current = await service.get_device("thing-5")
    assert await service.delete_device("thing-5", etag=current.etag) is True


async def test_ids_with_reserved_characters_round_trip(service, rm):
    device_id = "site:7$line(2)'a'%b*c!d@e=f,g"

    await service.create_or_update_device(DeviceIdentity(device_id))
    await service.create_or_update_module(device_id, "aws-bridge")
    twin = await service.replace_twin(device_id, {"k": 1}, {}, module_id="aws-bridge")

    assert (await asyncio.to_thread(rm.get_device, device_id)).device_id == device_id
    assert twin.module_id == "aws-bridge"
    assert await service.delete_device(device_id) is True


async def test_invalid_device_is_a_hub_error_not_retried(service, stats):
    with pytest.raises(HubError) as invalid:
        await service.create_or_update_device(DeviceIdentity("bad/id"))
    assert invalid.value.status == 400
    assert sum(stats.retries.values()) == 0


async def test_relay_module_identity(service, rm):
    await service.create_or_update_device(DeviceIdentity("thing-6", X509Thumbprints(SHA256)))

    module = await service.create_or_update_module("thing-6", "aws-bridge")
    again = await service.create_or_update_module("thing-6", "aws-bridge", managed_by="bridge")

    seen = await asyncio.to_thread(rm.get_module, "thing-6", "aws-bridge")
    assert seen.authentication.type == "sas"
    assert isinstance(module.auth, SasAuth)
    assert seen.authentication.symmetric_key.primary_key == module.auth.primary_key
    assert again.auth == module.auth
    assert seen.managed_by == "bridge"
    assert (await service.get_module("thing-6", "aws-bridge")).etag == seen.etag
    assert await service.delete_module("thing-6", "aws-bridge") is True
    assert await service.delete_module("thing-6", "aws-bridge") is False


async def test_module_on_a_missing_device_is_not_found(service):
    with pytest.raises(NotFound):
        await service.create_or_update_module("nobody", "aws-bridge")


def test_thumbprints_are_validated():
    with pytest.raises(ValueError, match="40 or 64 hex"):
        X509Thumbprints("abc")
    with pytest.raises(ValueError, match="secondary"):
        X509Thumbprints(SHA256, "zz" * 20)
    assert X509Thumbprints(SHA1.lower()).primary == SHA1.upper()
