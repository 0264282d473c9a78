"""Table tests for the IoT policy compiler that feeds the mosquitto plugin."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from bridge_sim.aws.authz import (
    CLIENT_ID,
    Principal,
    Rule,
    compile_rules,
    compile_table,
    write_table,
)
from bridge_sim.pki import CertificateAuthority, der_sha256, new_key

ARN = "arn:aws:iot:us-east-1:123456789012"
CONNECT, PUBLISH, RECEIVE, SUBSCRIBE, RETAIN = 1, 2, 4, 8, 16


@pytest.fixture(scope="module")
def device_pem() -> str:
    ca = CertificateAuthority.create("device ca")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "sensor-7"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme*Corp"),
        ]
    )
    cert = ca.sign(new_key().public_key(), subject)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def policy(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


CASES = [
    pytest.param(
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:ClientId}}"},
        [Rule("A", CONNECT, "-", f"{ARN}:client/{CLIENT_ID}")],
        id="client-id-variable",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": f"{ARN}:topic/things/${{iot:Connection.Thing.ThingName}}/*",
        },
        [Rule("A", PUBLISH | RECEIVE, "A", f"{ARN}:topic/things/{CLIENT_ID}/*")],
        id="thing-name-needs-attachment",
    ),
    pytest.param(
        {"Effect": "Deny", "Action": "iot:*", "Resource": "*"},
        [Rule("D", CONNECT | PUBLISH | RECEIVE | SUBSCRIBE | RETAIN, "-", "*")],
        id="iot-star",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:*Publish",
            "Resource": [f"{ARN}:topic/a", f"{ARN}:topic/b"],
        },
        [
            Rule("A", PUBLISH | RETAIN, "-", f"{ARN}:topic/a"),
            Rule("A", PUBLISH | RETAIN, "-", f"{ARN}:topic/b"),
        ],
        id="action-glob-and-resource-list",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "IOT:subscribe",
            "Resource": "arn:aws:iot:*:*:topicfilter/$aws/#",
        },
        [Rule("A", SUBSCRIBE, "-", "arn:aws:iot:*:*:topicfilter/$aws/#")],
        id="action-case-insensitive",
    ),
    pytest.param(
        {"Effect": "Allow", "Action": "iot:GetThingShadow", "Resource": "*"},
        [],
        id="non-mqtt-action-ignored",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": "*",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        },
        [Rule("A", CONNECT, "A", "*")],
        id="is-attached-true",
    ),
    pytest.param(
        {
            "Effect": "Deny",
            "Action": "iot:Connect",
            "Resource": "*",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": ["false"]}},
        },
        [Rule("D", CONNECT, "N", "*")],
        id="is-attached-false",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": False}},
        },
        [],
        id="thing-name-contradicts-not-attached",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/cn/${{iot:Certificate.Subject.CommonName}}",
        },
        [Rule("A", PUBLISH, "-", f"{ARN}:topic/cn/sensor-7")],
        id="certificate-common-name",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/org/${{iot:Certificate.Subject.Organization}}",
        },
        [Rule("A", PUBLISH, "-", f"{ARN}:topic/org/Acme\\*Corp")],
        id="substituted-wildcards-are-literal",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/ou/${{iot:Certificate.Subject.OrganizationalUnit}}",
        },
        [],
        id="missing-subject-field-never-matches",
    ),
    pytest.param(
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/star/${{*}}"},
        [Rule("A", PUBLISH, "-", f"{ARN}:topic/star/\\*")],
        id="escaped-star",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/${{iot:Connection.Thing.Attributes[site]}}",
        },
        [],
        id="unsupported-variable-allow-skipped",
    ),
    pytest.param(
        {
            "Effect": "Deny",
            "Action": "iot:Publish",
            "Resource": f"{ARN}:topic/${{iot:Connection.Thing.Attributes[site]}}/x",
        },
        [Rule("D", PUBLISH, "-", f"{ARN}:topic/*/x")],
        id="unsupported-variable-deny-widened",
    ),
    pytest.param(
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}},
        },
        [],
        id="unsupported-condition-allow-skipped",
    ),
    pytest.param(
        {
            "Effect": "Deny",
            "Action": "iot:Connect",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
        },
        [Rule("D", CONNECT, "-", "*")],
        id="unsupported-condition-deny-unconditional",
    ),
    pytest.param(
        {"Effect": "Allow", "NotAction": "iot:Connect", "Resource": "*"},
        [],
        id="not-action-allow-skipped",
    ),
    pytest.param(
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/back\\slash\x01"},
        [Rule("A", PUBLISH, "-", f"{ARN}:topic/back\\\\slash\\\x01")],
        id="literal-backslash-and-control-byte",
    ),
    pytest.param(
        {"Effect": "Maybe", "Action": "iot:*", "Resource": "*"},
        [],
        id="unknown-effect-ignored",
    ),
]


@pytest.mark.parametrize(("statement", "expected"), CASES)
def test_statement_compiles_to_rules(
    device_pem: str, statement: dict[str, object], expected: list[Rule]
) -> None:
    assert compile_rules([policy(statement)], device_pem) == expected


def test_statement_as_object_and_invalid_document(device_pem: str) -> None:
    single = json.dumps(
        {"Statement": {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}}
    )
    assert compile_rules([single, "not json", "[]"], device_pem) == [Rule("A", CONNECT, "-", "*")]


def test_table_lists_only_active_certificates(device_pem: str, tmp_path: Path) -> None:
    ca = CertificateAuthority.create("other")
    inactive = ca.issue("old").cert_pem
    document = policy({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"})
    table = compile_table(
        [
            Principal("id-active", device_pem, "ACTIVE", ("sensor 7", "t2"), (document,)),
            Principal("id-inactive", inactive, "INACTIVE", ("old",), (document,)),
            Principal("id-revoked", inactive, "REVOKED", (), (document,)),
        ],
        region="eu-west-1",
        account_id="000000000001",
    )
    lines = table.splitlines()
    assert lines[:2] == ["iot-authz 1", "arn arn:aws:iot:eu-west-1:000000000001:"]
    assert lines[2:] == [
        f"cert {der_sha256(device_pem)} id-active sensor-7",
        "thing sensor%207",
        "thing t2",
        f"rule A {CONNECT} - *",
    ]
    path = tmp_path / "table"
    write_table(path, table)
    assert path.read_text() == table


def test_field_escaping_keeps_one_record_per_line(device_pem: str) -> None:
    document = policy(
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/a b%\nc"}
    )
    table = compile_table([Principal("id", device_pem, "ACTIVE", ("x\ny",), (document,))])
    assert "thing x%0Ay" in table.splitlines()
    assert f"rule A {PUBLISH} - {ARN}:topic/a%20b%25\\%0Ac" in table.splitlines()


def test_write_table_changes_mtime_even_within_one_clock_tick(tmp_path: Path) -> None:
    path = tmp_path / "table"
    seen = []
    for _ in range(5):
        write_table(path, "same size\n")
        stat = path.stat()
        seen.append((stat.st_ino, stat.st_mtime_ns))
    assert len(set(seen)) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["table"]


def test_concurrent_writers_never_leave_a_partial_table(tmp_path: Path) -> None:
    path = tmp_path / "table"
    texts = [f"writer {i}\n" * 1000 for i in range(4)]
    threads = [threading.Thread(target=write_table, args=(path, t)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_text() in texts


def test_self_signed_subject_fields_use_issuer_too() -> None:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maker-1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    statement = {
        "Effect": "Allow",
        "Action": "iot:Subscribe",
        "Resource": f"{ARN}:topicfilter/${{iot:Certificate.Issuer.CommonName}}/#",
    }
    assert compile_rules([policy(statement)], pem) == [
        Rule("A", SUBSCRIBE, "-", f"{ARN}:topicfilter/maker-1/#")
    ]
