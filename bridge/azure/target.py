"""`AzureTarget`: the engine's `Target` on IoT Hub (identities, relay modules, twins).

Every write is whole and repeatable: the twin's tags and desired properties are replaced
with what the view says (PUT, so keys removed on AWS disappear on Azure too), identities
are created or updated in place. Reported properties are left to the device: the
service API cannot write them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from bridge.azure.hub import IotHubService
from bridge.azure.models import (
    Auth,
    CertificateAuthorityAuth,
    DeviceIdentity,
    DeviceImport,
    SasAuth,
    X509Thumbprints,
)
from bridge.azure.reported import ReportedWriter
from bridge.azure.storage import ImportContainer
from bridge.azure.twin_map import fingerprint_of, split_fingerprint, twin_document
from bridge.core.ports import DeletePolicy
from bridge.core.view import DeviceView
from bridge.errors import HubError, NotFound, PreconditionFailed, Rejected
from bridge.logging import get_logger
from bridge.mapping.models import AuthPlan
from bridge.mapping.twin import MAX_REPORTED_BYTES, document_size, refused_entry

__all__ = ["UNKNOWN_TWIN", "AuthLookup", "AzureTarget", "auth_from_plan"]

_log = get_logger("azure.target")

AuthLookup = Callable[[str], Awaitable[AuthPlan | None]]
"""How a device authenticates on Azure: from the plan, or looked up on AWS."""

_TWIN_QUERY = "SELECT * FROM devices"
_CLIENT_ERRORS = range(400, 500)
_ALREADY_EXISTS = frozenset({"DeviceAlreadyExists", "409001"})  # "create" on a device
_MODULE_EXISTS = frozenset({"ModuleAlreadyExistsOnDevice", "409301"})
UNKNOWN_TWIN = "unknown"  # the fingerprint of a twin whose content the bridge does not know
_ETAGS_KEPT = 200_000  # about 25 MB at most; a forgotten etag only means If-Match: *


def _import_outcome(error: Mapping[str, Any], written: str | Exception) -> str | Exception:
    """What one line of importErrors.log means for its device's result."""
    code = str(error.get("errorCode"))
    if error.get("moduleId") is not None:
        if code in _MODULE_EXISTS or not isinstance(written, str):
            return written  # the relay module is there already: the device is fine
        # The device is there without its relay module: its worker creates it whole.
        return HubError(500, "ModuleNotImported", f"relay module not imported: {code}")
    if code in _ALREADY_EXISTS:
        # There already, with a twin of unknown age: a fingerprint matching no twin makes
        # the SYNC that follows every import replace tags, desired and reported.
        return UNKNOWN_TWIN if isinstance(written, str) else written
    return Rejected(f"import refused: {code} {error.get('errorStatus')}")


def auth_from_plan(plan: AuthPlan | None) -> Auth:
    """The identity's authentication for a planned auth; hub-generated SAS when none."""
    if plan is None or plan.type == "sas":
        return SasAuth()
    if plan.type == "certificateAuthority":
        return CertificateAuthorityAuth()
    primary = plan.primary_thumbprint_sha256 or plan.primary_thumbprint_sha1
    if primary is None:
        return SasAuth()
    secondary = plan.secondary_thumbprint_sha256 or plan.secondary_thumbprint_sha1
    return X509Thumbprints(primary, secondary)


class AzureTarget:
    """Mirrors device views into one IoT hub."""

    def __init__(
        self,
        hub: IotHubService,
        *,
        auth_lookup: AuthLookup | None = None,
        relay_module: str | None = "aws-bridge",
        import_container: ImportContainer | None = None,
        reported: ReportedWriter | None = None,
    ) -> None:
        self._hub = hub
        self._import_container = import_container
        self._reported = reported  # None: AWS reported state is not mirrored
        self._etags: dict[str, str] = {}  # device -> etag of the bridge's last twin write
        self.external_changes = 0  # twins found changed by someone else at write time
        self._auth_lookup = auth_lookup
        self._relay_module = relay_module

    def fingerprint(self, view: DeviceView, group_paths: Mapping[str, str]) -> str:
        return twin_document(view, group_paths).fingerprint

    def same(self, written: str, observed: str) -> bool:
        # Anti-entropy reads device twins only; the reported part is the module twin's.
        return split_fingerprint(written)[0] == observed

    async def apply(
        self,
        view: DeviceView,
        group_paths: Mapping[str, str],
        *,
        create: bool,
        previous: str | None = None,
    ) -> str:
        document = twin_document(view, group_paths)
        old_twin, old_reported = split_fingerprint(previous)
        if create:
            await self._create(view.device_id)
        if create or old_twin != document.twin_fingerprint:
            for reason in document.left_out:
                _log.warning("azure.twin_value_left_out", device_id=view.device_id, reason=reason)
            try:
                await self._replace_twin(view.device_id, document.tags, document.desired)
            except NotFound:
                # Deleted on Azure behind the bridge's back: put it back, then write.
                _log.warning("azure.device_recreated", device_id=view.device_id)
                await self._create(view.device_id)
                await self._replace_twin(view.device_id, document.tags, document.desired)
        if self._reported is not None and old_reported != document.reported_fingerprint:
            await self._write_reported(view.device_id, document.reported)
        return document.fingerprint

    async def _write_reported(self, device_id: str, reported: dict[str, Any]) -> None:
        assert self._reported is not None
        reason = _reported_refusal(reported)
        if reason:
            # Tags and desired still mirror; only this section waits for a report IoT Hub
            # takes (sending it would fail on every retry, and hold the device's syncs).
            _log.warning("azure.reported_not_mirrored", device_id=device_id, reason=reason)
            return
        await self._reported.write(device_id, reported)

    async def _replace_twin(
        self, device_id: str, tags: dict[str, Any], desired: dict[str, Any]
    ) -> None:
        """Replace tags and desired, If-Match the etag of the bridge's last write.

        A 412 means someone changed the twin since: AWS is the source of truth for these
        sections during the migration, so the write goes ahead, but it is counted and
        logged as a change made outside the bridge.
        """
        etag = self._etags.pop(device_id, None)
        try:
            try:
                twin = await self._hub.replace_twin(device_id, tags, desired, etag=etag)
            except PreconditionFailed:
                self.external_changes += 1
                _log.warning("azure.external_change_overwritten", device_id=device_id)
                twin = await self._hub.replace_twin(device_id, tags, desired)
        except NotFound:
            raise
        except HubError as exc:
            if exc.status in _CLIENT_ERRORS and exc.status not in (408, 412, 429):
                raise Rejected(f"IoT Hub refused the twin: {exc}") from exc
            raise
        if len(self._etags) >= _ETAGS_KEPT:
            self._etags.pop(next(iter(self._etags)))  # forget the oldest: bounded memory
        self._etags[device_id] = twin.etag

    async def _create(self, device_id: str) -> None:
        plan = await self._auth_lookup(device_id) if self._auth_lookup else None
        if plan is None:
            _log.info("azure.sas_fallback", device_id=device_id)
        identity = DeviceIdentity(device_id, auth_from_plan(plan))
        try:
            await self._hub.create_or_update_device(identity)
            if self._relay_module:
                await self._hub.create_or_update_module(
                    device_id, self._relay_module, managed_by="iot-bridge"
                )
        except HubError as exc:
            if exc.status in _CLIENT_ERRORS and exc.status not in (404, 408, 409, 412, 429):
                raise Rejected(f"IoT Hub refused the identity: {exc}") from exc
            raise

    async def _creations(
        self, items: Sequence[tuple[DeviceView, Mapping[str, str]]], *, with_modules: bool
    ) -> tuple[dict[str, str | Exception], list[DeviceImport]]:
        """Per device the fingerprint a creation writes (or why it cannot be created), and
        the bulk or import entries: identity with twin, and the relay module if asked."""
        results: dict[str, str | Exception] = {}
        entries: list[DeviceImport] = []
        for view, paths in items:
            try:
                document = twin_document(view, paths)
            except Rejected as exc:
                results[view.device_id] = exc
                continue
            for reason in document.left_out:
                _log.warning("azure.twin_value_left_out", device_id=view.device_id, reason=reason)
            plan = await self._auth_lookup(view.device_id) if self._auth_lookup else None
            identity = DeviceIdentity(view.device_id, auth_from_plan(plan))
            entries.append(DeviceImport(identity, tags=document.tags, desired=document.desired))
            if with_modules and self._relay_module:
                module = DeviceIdentity(view.device_id, SasAuth())
                entries.append(DeviceImport(module, module_id=self._relay_module))
            results[view.device_id] = document.created_fingerprint
        return results, entries

    async def provision(
        self, items: Sequence[tuple[DeviceView, Mapping[str, str]]]
    ) -> dict[str, str | Exception]:
        """Create many devices with their twins in bulk calls (100 per call).

        Returns per device the fingerprint written, or the error for that device alone.
        """
        results, entries = await self._creations(items, with_modules=False)
        if not entries:
            return results
        # "create", not "createOrUpdate": a device that exists already (created by a run
        # killed before the store recorded it) may hold an older twin, which a bulk update
        # would merge into rather than replace. Those are written one by one instead.
        outcome = await self._hub.bulk(entries, "create")
        existing: set[str] = set()
        for error in outcome.errors:
            if error.code in _ALREADY_EXISTS:
                existing.add(error.device_id)
                continue
            reason = f"IoT Hub refused the device: {error.code} {error.message}"
            results[error.device_id] = Rejected(reason)
        if self._relay_module:
            failed = {error.device_id for error in outcome.errors}
            for device_id in (e.identity.device_id for e in entries):
                if device_id in failed:
                    continue
                await self._hub.create_or_update_module(
                    device_id, self._relay_module, managed_by="iot-bridge"
                )
        for view, paths in items:
            if view.device_id in existing:
                _log.info("azure.device_existed", device_id=view.device_id)
                try:
                    results[view.device_id] = await self.apply(view, paths, create=True)
                except Exception as exc:  # the worker retries it, or fails it if Rejected
                    results[view.device_id] = exc
        return results

    async def import_devices(
        self, items: Sequence[tuple[DeviceView, Mapping[str, str]]]
    ) -> dict[str, str | Exception]:
        """Create many devices, relay modules and twins with one import job.

        Import jobs spend no identity-registry operations, which at S1 allow fewer than
        two devices a second: for a large fleet this is the only fast way in. Returns
        per device the fingerprint written, or why that device failed.
        """
        if self._import_container is None:
            msg = "import jobs need AZURE_STORAGE_CONNECTION_STRING"
            raise RuntimeError(msg)
        results, entries = await self._creations(items, with_modules=True)
        if not entries:
            return results
        # "create" for the reason `provision` gives: a device a killed run created (its
        # import job runs on after the bridge dies) may hold an older twin.
        outcome = await self._hub.import_devices(
            entries, container_sas_uri=await self._import_container.sas_uri(), mode="create"
        )
        if outcome.status != "completed":
            msg = f"import job {outcome.job_id} {outcome.status}: {outcome.failure_reason}"
            raise HubError(500, "ImportJobFailed", msg)
        for error in outcome.errors:
            device_id = error.get("deviceId")
            if isinstance(device_id, str) and device_id in results:
                results[device_id] = _import_outcome(error, results[device_id])
        return results

    async def remove(self, device_id: str, policy: DeletePolicy) -> None:
        try:
            if policy is DeletePolicy.DELETE:
                await self._hub.delete_device(device_id)
            elif policy is DeletePolicy.DISABLE:
                device = await self._hub.get_device(device_id)
                disabled = DeviceIdentity(
                    device_id, device.auth, "disabled", "thing deleted on AWS"
                )
                await self._hub.create_or_update_device(disabled, etag=device.etag)
            else:
                await self._hub.update_twin(device_id, tags={"aws": {"deleted": True}})
        except NotFound:
            _log.info("azure.device_already_gone", device_id=device_id)

    async def observed(self) -> AsyncIterator[tuple[str, str]]:
        async for row in self._hub.query(_TWIN_QUERY):
            device_id = row.get("deviceId")
            if not isinstance(device_id, str):
                continue
            properties = row.get("properties") or {}
            yield device_id, fingerprint_of(row.get("tags") or {}, properties.get("desired") or {})


def _reported_refusal(reported: dict[str, Any]) -> str | None:
    """Why IoT Hub would refuse `reported` as the relay module's reported section."""
    size = document_size(reported)
    if size > MAX_REPORTED_BYTES:
        return f"reported would be {size} bytes, over IoT Hub's {MAX_REPORTED_BYTES}"
    refused = refused_entry(reported)
    return f"reported: {refused}" if refused else None
