"""Registry rules moto gets wrong, put right on its backend instance.

- Thing `version` increments on every UpdateThing, and `expectedVersion` is enforced on
  UpdateThing and DeleteThing (moto ignores both).
- DescribeThing by name is a dictionary lookup (moto scans every thing, which makes a
  100,000-thing estate quadratic).
- A deleted thing leaves its groups (moto keeps it listed as a member).
- A thing group with a missing parent is refused with ResourceNotFound (moto fails with
  an internal error) and the hierarchy depth is capped at 7, as AWS does.
- ListCACertificates exists (moto answers "not implemented", which clients retry), and
  DescribeCertificate says which registered CA issued a certificate.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from moto.core.responses import ActionResult
from moto.iot.exceptions import (
    InvalidRequestException,
    ResourceNotFoundException,
    VersionConflictException,
)
from moto.iot.models import FakeCertificate
from moto.iot.responses import IoTResponse
from moto.utilities.utils import get_partition

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.sim.aws.hooks import Call
    from bridge.sim.aws.moto_server import MotoServer

__all__ = ["MAX_GROUP_DEPTH", "ThingRules"]


_MOTO_DESCRIPTION = FakeCertificate.to_description_dict


def _describe_certificate(cert: Any) -> dict[str, Any]:
    """DescribeCertificate's description, with the fields moto leaves out."""
    description: dict[str, Any] = _MOTO_DESCRIPTION(cert)
    description["caCertificateId"] = cert.ca_certificate_id
    description["certificateMode"] = "DEFAULT"
    return description


def _list_ca_certificates(response: Any) -> ActionResult:
    """ListCACertificates, as moto's IoTResponse would have it (one page)."""
    cas = response.iot_backend.ca_certificates.values()
    return ActionResult(
        {
            "certificates": [
                {
                    "certificateArn": ca.arn,
                    "certificateId": ca.certificate_id,
                    "status": ca.status,
                    "creationDate": ca.creation_date,
                }
                for ca in cas
            ]
        }
    )


MAX_GROUP_DEPTH = 7


class ThingRules:
    """Installs the registry corrections on one MotoServer."""

    def __init__(self, *, moto: MotoServer) -> None:
        self._moto = moto
        self._patched: dict[str, Callable[..., Any] | None] = {}
        self._description: Callable[..., Any] | None = None

    def install(self) -> None:
        """Wrap the backend and the two response handlers that carry `expectedVersion`."""
        backend = self._moto.iot
        backend.describe_thing = self.describe_thing
        hooks = self._moto.iot_hooks
        hooks.after("update_thing", self._bump_version)
        hooks.before("delete_thing", self._remember_arn)
        hooks.after("delete_thing", self._leave_groups)
        hooks.before("create_thing_group", self._check_parent)
        for name in ("update_thing", "delete_thing"):
            handler = getattr(IoTResponse, name)
            self._patched[name] = handler
            setattr(IoTResponse, name, self._expecting_version(handler))
        self._patched["list_ca_certificates"] = getattr(IoTResponse, "list_ca_certificates", None)
        self._description = FakeCertificate.to_description_dict
        FakeCertificate.to_description_dict = _describe_certificate
        IoTResponse.list_ca_certificates = _list_ca_certificates

    def uninstall(self) -> None:
        """Restore moto's response handlers (they are class attributes, shared process-wide)."""
        for name, original in self._patched.items():
            if original is None:
                delattr(IoTResponse, name)
            else:
                setattr(IoTResponse, name, original)
        self._patched.clear()
        if self._description is not None:
            FakeCertificate.to_description_dict = self._description
            self._description = None

    def describe_thing(self, thing_name: str) -> Any:
        """DescribeThing in constant time: the registry is keyed by ARN, derived from the name."""
        backend = self._moto.iot
        partition = get_partition(backend.region_name)
        arn = f"arn:{partition}:iot:{backend.region_name}:{backend.account_id}:thing/{thing_name}"
        thing = backend.things.get(arn)
        if thing is None:
            raise ResourceNotFoundException
        return thing

    def _expecting_version(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        lock = self._moto.lock
        describe = self.describe_thing

        @functools.wraps(handler)
        def wrapper(response: Any) -> Any:
            expected = response._get_param("expectedVersion")
            # Check and change under one lock so a concurrent update cannot slip between.
            with lock:
                if expected is not None:
                    name = response._get_param("thingName")
                    if describe(name).version != int(expected):
                        raise VersionConflictException(name)
                return handler(response)

        return wrapper

    def _bump_version(self, call: Call) -> None:
        self.describe_thing(call.arguments["thing_name"]).version += 1

    def _remember_arn(self, call: Call) -> None:
        call.context["arn"] = self.describe_thing(call.arguments["thing_name"]).arn

    def _leave_groups(self, call: Call) -> None:
        arn = call.context["arn"]
        for group in self._moto.iot.thing_groups.values():
            group.things.pop(arn, None)

    def _check_parent(self, call: Call) -> None:
        parent = call.arguments.get("parent_group_name")
        if not parent:
            return
        backend = self._moto.iot
        groups = {g.thing_group_name: g for g in backend.thing_groups.values()}
        if parent not in groups:
            raise ResourceNotFoundException(f"Thing group {parent} does not exist")
        depth = len(groups[parent].metadata.get("rootToParentThingGroups", [])) + 2
        if depth > MAX_GROUP_DEPTH:
            raise InvalidRequestException(
                f"Thing group hierarchy depth cannot exceed {MAX_GROUP_DEPTH}"
            )
