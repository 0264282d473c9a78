"""IoT policies compiled into the table that the mosquitto plugin `iot_authz` enforces.

The plugin decides at CONNECT, PUBLISH, SUBSCRIBE and delivery time; everything that can be
resolved ahead of time (action globs, certificate subject variables, conditions) is resolved
here, so the C side only matches globs. Table format: see the header of
`mosquitto_plugin/iot_authz.c`.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from bridge.logging import get_logger
from bridge.x509 import der_sha256

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ACTION_BITS", "Principal", "Rule", "compile_rules", "compile_table", "write_table"]

log = get_logger("sim.aws.authz")

TABLE_HEADER = "iot-authz 1"
ACTION_BITS = {
    "iot:connect": 1,
    "iot:publish": 2,
    "iot:receive": 4,
    "iot:subscribe": 8,
    "iot:retainpublish": 16,
}
ALL_ACTIONS = sum(ACTION_BITS.values())
# The plugin substitutes the connecting client's id for this byte and matches it literally.
CLIENT_ID = "\x01"
_ATTACHED_KEY = "iot:connection.thing.isattached"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}
_NAME_FIELDS = {
    "CommonName": NameOID.COMMON_NAME,
    "Organization": NameOID.ORGANIZATION_NAME,
    "OrganizationalUnit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "Country": NameOID.COUNTRY_NAME,
    "State": NameOID.STATE_OR_PROVINCE_NAME,
    "Locality": NameOID.LOCALITY_NAME,
    "SerialNumber": NameOID.SERIAL_NUMBER,
    "Title": NameOID.TITLE,
    "Surname": NameOID.SURNAME,
    "GivenName": NameOID.GIVEN_NAME,
    "Initials": NameOID.INITIALS,
    "Pseudonym": NameOID.PSEUDONYM,
    "GenerationQualifier": NameOID.GENERATION_QUALIFIER,
    "DistinguishedNameQualifier": NameOID.DN_QUALIFIER,
}
_CERTIFICATE_VARIABLES = {
    f"iot:certificate.{scope}.{field}".lower()
    for scope in ("Subject", "Issuer")
    for field in _NAME_FIELDS
}
_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """An X.509 certificate as the registry knows it, with what is attached to it."""

    certificate_id: str
    certificate_pem: str
    status: str
    things: tuple[str, ...]
    # JSON texts of the default versions of the policies attached to the certificate.
    policy_documents: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One resolved statement/resource pair: effect, action bits, condition and ARN glob."""

    effect: str  # "A" allow, "D" deny
    actions: int
    condition: str  # "-" always, "A" only when attached, "N" only when not attached
    pattern: str


def _warn_once(reason: str, statement: dict[str, Any]) -> None:
    with _warned_lock:
        if reason in _warned:
            return
        _warned.add(reason)
    log.warning("sim.aws.policy_statement_unsupported", reason=reason, statement=statement)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob_regex(glob: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _action_bits(actions: list[Any]) -> int:
    bits = 0
    for action in actions:
        if isinstance(action, str):
            matcher = _glob_regex(action)
            bits |= sum(bit for name, bit in ACTION_BITS.items() if matcher.fullmatch(name))
    return bits


def _condition(condition: Any) -> str | None:
    """Map the one supported condition to "-", "A" or "N"; None when unsupported."""
    if condition is None:
        return "-"
    if not isinstance(condition, dict) or set(condition) != {"Bool"}:
        return None
    tests = condition["Bool"]
    if not isinstance(tests, dict) or {k.lower() for k in tests} != {_ATTACHED_KEY}:
        return None
    values = {str(v).lower() for v in _as_list(next(iter(tests.values())))}
    if values == {"true"}:
        return "A"
    if values == {"false"}:
        return "N"
    return None


def _quote(text: str) -> str:
    """Quote wildcard characters and control bytes so the plugin matches them literally."""
    return "".join(f"\\{c}" if c in "*?\\" or ord(c) < 0x20 else c for c in text)


def _literal(text: str) -> str:
    """Policy text outside variables: wildcards stay globs, the rest is matched literally."""
    return "".join(f"\\{c}" if c == "\\" or ord(c) < 0x20 else c for c in text)


@functools.lru_cache(maxsize=65536)
def _subject_fields(certificate_pem: str) -> dict[str, str]:
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    fields: dict[str, str] = {}
    for scope, name in (("Subject", cert.subject), ("Issuer", cert.issuer)):
        for field, oid in _NAME_FIELDS.items():
            values = name.get_attributes_for_oid(oid)
            if values:
                fields[f"iot:certificate.{scope}.{field}".lower()] = str(values[0].value)
    return fields


@dataclass
class _Resolution:
    pattern: str | None  # None: the statement cannot match this principal
    needs_attached: bool = False
    unsupported: str | None = None


def _resolve(resource: str, certificate_pem: str) -> _Resolution:
    """Substitute policy variables in one resource; wildcards outside variables stay globs."""
    result = _Resolution(pattern="")
    pieces: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(resource):
        pieces.append(_literal(resource[position : match.start()]))
        position = match.end()
        name = match.group(1)
        key = name.lower()
        if name in _LITERAL_VARIABLES:
            pieces.append(_quote(_LITERAL_VARIABLES[name]))
        elif key == "iot:clientid":
            pieces.append(CLIENT_ID)
        elif key == "iot:connection.thing.thingname":
            pieces.append(CLIENT_ID)
            result.needs_attached = True
        elif key in _CERTIFICATE_VARIABLES:
            value = _subject_fields(certificate_pem).get(key)
            if value is None:
                # AWS: a variable without a value makes the statement not apply.
                return _Resolution(pattern=None)
            pieces.append(_quote(value))
        else:
            result.unsupported = f"policy variable ${{{name}}}"
            pieces.append("*")
    pieces.append(_literal(resource[position:]))
    result.pattern = "".join(pieces)
    return result


def _statement_rules(statement: dict[str, Any], certificate_pem: str) -> list[Rule]:
    effect = statement.get("Effect")
    if effect not in {"Allow", "Deny"}:
        return []
    deny = effect == "Deny"
    problems: list[str] = []
    if "NotAction" in statement:
        problems.append("NotAction")
        actions = ALL_ACTIONS
    else:
        actions = _action_bits(_as_list(statement.get("Action", [])))
    if not actions:
        return []  # no MQTT data-plane action in this statement
    condition = _condition(statement.get("Condition"))
    if condition is None:
        problems.append(f"condition {json.dumps(statement.get('Condition'), sort_keys=True)}")
        condition = "-"
    if "NotResource" in statement:
        problems.append("NotResource")
        resources: list[Any] = ["*"]
    else:
        resources = _as_list(statement.get("Resource", []))
    rules: list[Rule] = []
    for resource in resources:
        if not isinstance(resource, str) or not resource or "\x00" in resource:
            continue
        resolved = _resolve(resource, certificate_pem)
        if resolved.pattern is None:
            continue
        if resolved.unsupported:
            problems.append(resolved.unsupported)
        rule_condition = condition
        if resolved.needs_attached:
            if condition == "N":
                continue  # ThingName needs an attached thing, the condition forbids one
            rule_condition = "A"
        rules.append(Rule("D" if deny else "A", actions, rule_condition, resolved.pattern))
    if problems:
        # Never widen access: an Allow we cannot evaluate is dropped, a Deny is applied
        # more broadly (condition ignored, unknown variables as `*`).
        _warn_once(
            "; ".join(sorted(set(problems))) + (" (deny widened)" if deny else " (allow skipped)"),
            statement,
        )
        if not deny:
            return []
    return rules


@functools.lru_cache(maxsize=1024)
def _statements(document: str) -> tuple[dict[str, Any], ...]:
    try:
        parsed = json.loads(document)
    except json.JSONDecodeError:
        log.warning("sim.aws.policy_not_json", document=document[:200])
        return ()
    statements = _as_list(parsed.get("Statement", [])) if isinstance(parsed, dict) else []
    return tuple(s for s in statements if isinstance(s, dict))


def compile_rules(policy_documents: Iterable[str], certificate_pem: str) -> list[Rule]:
    """Resolve the statements of `policy_documents` for one certificate."""
    return [
        rule
        for document in policy_documents
        for statement in _statements(document)
        for rule in _statement_rules(statement, certificate_pem)
    ]


def _field(text: str) -> str:
    """%XX-escape what would break the line format; the plugin rejects %00."""
    return "".join(
        f"%{ord(c):02X}" if c in "% " or ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
    )


@functools.lru_cache(maxsize=65536)
def _common_name(certificate_pem: str) -> str:
    return _subject_fields(certificate_pem).get("iot:certificate.subject.commonname", "")


# A fleet-wide table is rebuilt on every registry change; most principals did not change.
@functools.lru_cache(maxsize=65536)
def _principal_records(principal: Principal) -> str:
    common_name = _common_name(principal.certificate_pem).replace("\x00", "") or "-"
    fingerprint = der_sha256(principal.certificate_pem)
    lines = [f"cert {fingerprint} {_field(principal.certificate_id)} {_field(common_name)}"]
    lines.extend(f"thing {_field(t)}" for t in principal.things if t and "\x00" not in t)
    lines.extend(
        f"rule {r.effect} {r.actions} {r.condition} {_field(r.pattern)}"
        for r in compile_rules(principal.policy_documents, principal.certificate_pem)
    )
    return "\n".join(lines) + "\n"


def compile_table(
    principals: Iterable[Principal],
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
) -> str:
    """Render the plugin's table: only ACTIVE certificates can connect at all."""
    header = f"{TABLE_HEADER}\narn {_field(f'arn:aws:iot:{region}:{account_id}:')}\n"
    return header + "".join(_principal_records(p) for p in principals if p.status == "ACTIVE")


_last_mtime_ns = 0
_mtime_lock = threading.Lock()


def write_table(path: Path, text: str) -> None:
    """Replace the table atomically, with an mtime the plugin cannot mistake for the old one."""
    global _last_mtime_ns  # noqa: PLW0603 - one clock for every table this process writes
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # File timestamps tick coarsely (jiffies); two writes in one tick with the same
        # size and a recycled inode would look unchanged to the plugin.
        with _mtime_lock:
            _last_mtime_ns = max(_last_mtime_ns + 1_000, Path(temp).stat().st_mtime_ns)
            os.utime(temp, ns=(_last_mtime_ns, _last_mtime_ns))
        Path(temp).chmod(0o644)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
