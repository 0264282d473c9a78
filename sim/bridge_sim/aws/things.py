"""Registry rules moto gets wrong, put right on its backend instance.

- Thing `version` increments on every UpdateThing, and `expectedVersion` is enforced on
  UpdateThing and DeleteThing (moto ignores both).
- DescribeThing by name is a dictionary lookup (moto scans every thing, which makes a
  100,000-thing estate quadratic).
- A deleted thing leaves its groups (moto keeps it listed as a member).
- A thing group with a missing parent is refused with ResourceNotFound (moto fails with
  an internal error) and the hierarchy depth is capped at 7, as AWS does.
- DescribeCertificate, principal lookups, ListThingPrincipals and ListThings pages cost
  what they return,
  not a scan of the whole registry (moto's are linear per call, quadratic per estate).
- A thing holds at most 3 attributes without a thing type and 50 with one.
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

    from bridge_sim.aws.hooks import Call
    from bridge_sim.aws.moto_server import MotoServer

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
MAX_UNTYPED_ATTRIBUTES = 3
MAX_TYPED_ATTRIBUTES = 50


class ThingRules:
    """Installs the registry corrections on one MotoServer."""

    def __init__(self, *, moto: MotoServer) -> None:
        self._moto = moto
        self._patched: dict[str, Callable[..., Any] | None] = {}
        self._description: Callable[..., Any] | None = None
        self._principals: dict[str, list[str]] | None = None
        self._order: dict[str, int] | None = None
        self._arns: list[str] = []
        self._any_principal: Callable[[str], Any] | None = None

    def install(self) -> None:
        """Wrap the backend and the two response handlers that carry `expectedVersion`."""
        backend = self._moto.iot
        backend.describe_thing = self.describe_thing
        backend.describe_certificate = self.describe_certificate
        backend.list_thing_principals = self.list_thing_principals
        backend.list_things = self.list_things
        self._any_principal = backend._get_principal
        backend._get_principal = self.get_principal
        hooks = self._moto.iot_hooks
        for method in ("attach_thing_principal", "detach_thing_principal", "delete_thing"):
            hooks.after(method, self._forget_principals)
        for method in ("create_thing", "delete_thing"):
            hooks.after(method, self._forget_order)
        hooks.after("update_thing", self._bump_version)
        hooks.before("delete_thing", self._remember_arn)
        hooks.after("delete_thing", self._leave_groups)
        hooks.before("create_thing_group", self._check_parent)
        hooks.before("create_thing", self._check_attributes)
        hooks.before("update_thing", self._check_attributes)
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

    def describe_certificate(self, certificate_id: str) -> Any:
        """DescribeCertificate by id in constant time."""
        cert = self._moto.iot.certificates.get(certificate_id)
        if cert is None:
            raise ResourceNotFoundException
        return cert

    def list_thing_principals(self, thing_name: str) -> list[str]:
        """Principal ARNs attached to a thing, from an index rebuilt only after changes."""
        self.describe_thing(thing_name)
        if self._principals is None:
            index: dict[str, list[str]] = {}
            for principal_arn, name in self._moto.iot.principal_things:
                index.setdefault(name, []).append(principal_arn)
            self._principals = index
        return list(self._principals.get(thing_name, []))

    def get_principal(self, principal_arn: str) -> Any:
        """A certificate principal by its ARN in constant time; others as moto finds them."""
        if ":cert/" in principal_arn:
            cert = self._moto.iot.certificates.get(principal_arn.rsplit("/", 1)[1])
            if cert is None or cert.arn != principal_arn:
                raise ResourceNotFoundException
            return cert
        assert self._any_principal is not None
        return self._any_principal(principal_arn)

    def _forget_principals(self, _call: Call) -> None:
        self._principals = None

    def _forget_order(self, _call: Call) -> None:
        self._order = None

    def list_things(
        self,
        attribute_name: str | None = None,
        attribute_value: str | None = None,
        thing_type_name: str | None = None,
        max_results: int = 50,
        token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """ListThings, one page: the token is the ARN of the last thing returned."""
        things = self._moto.iot.things
        if self._order is None:
            self._arns = list(things)
            self._order = {arn: position for position, arn in enumerate(self._arns)}
        arns = self._arns
        start = self._order.get(token, -1) + 1 if token else 0
        page: list[dict[str, Any]] = []
        position = start
        for position in range(start, len(arns)):
            thing = things[arns[position]]
            if thing_type_name and (
                thing.thing_type is None or thing.thing_type.thing_type_name != thing_type_name
            ):
                continue
            if attribute_name and thing.attributes.get(attribute_name) != attribute_value:
                continue
            page.append(thing.to_dict())
            if len(page) == max_results:
                break
        more = position + 1 < len(arns) and len(page) == max_results
        return page, arns[position] if more else None

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

    def _check_attributes(self, call: Call) -> None:
        args = call.arguments
        payload = args.get("attribute_payload") or {}
        attributes = dict(payload.get("attributes") or {})
        has_type = bool(args.get("thing_type_name"))
        if call.method == "update_thing":
            thing = self.describe_thing(args["thing_name"])
            if payload.get("merge"):
                attributes = {**thing.attributes, **attributes}
            elif "attributes" not in payload:
                attributes = dict(thing.attributes)
            has_type = has_type or (
                thing.thing_type is not None and not args.get("remove_thing_type")
            )
        attributes = {k: v for k, v in attributes.items() if v}
        limit = MAX_TYPED_ATTRIBUTES if has_type else MAX_UNTYPED_ATTRIBUTES
        if len(attributes) > limit:
            kind = "with" if has_type else "without"
            raise InvalidRequestException(
                f"A thing {kind} a thing type can have at most {limit} attributes"
            )

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
