"""X.509 authentication at CONNECT: self-signed thumbprints and CA-signed chains."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from azure.iot.device import X509
from azure.iot.device.aio import IoTHubDeviceClient
from azure.iot.device.exceptions import CredentialError
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from bridge_sim.iothub.mqtt.harness import emulated_hub
from bridge_sim.pki import (
    CertificateAuthority,
    IssuedCertificate,
    new_key,
    self_signed,
    thumbprints,
)
from iothub_emulator.test_device_harness import STEP, connected, events_of, needs_port_443, refused


@pytest.fixture(scope="module")
def maker_ca():
    """The device maker's CA, registered with the hub as trusted."""
    return CertificateAuthority.create("device maker CA")


@pytest.fixture
async def hub(maker_ca):
    async with emulated_hub(trusted_cas=[maker_ca.cert]) as running:
        yield running


def x509_client(hub, tmp_path, device_id, issued, **options):
    cert_file, key_file = issued.write(tmp_path, device_id)
    return IoTHubDeviceClient.create_from_x509_certificate(
        x509=X509(str(cert_file), str(key_file)),
        hostname=hub.registry.host_name,
        device_id=device_id,
        gateway_hostname=hub.host,
        server_verification_cert=hub.ca_pem,
        connection_retry=False,
        **options,
    )


def register_self_signed(hub, device_id, primary, secondary=None):
    prints = {"primaryThumbprint": primary, "secondaryThumbprint": secondary}
    body = {"authentication": {"type": "selfSigned", "x509Thumbprint": prints}}
    hub.registry.put_device(device_id, body, None)


def auth_type_of_telemetry(hub, device_id):
    [event] = events_of(hub, device_id, "Telemetry")
    return json.loads(event.extra_annotations["iothub-connection-auth-method"])["type"]


@pytest.mark.parametrize("slot", ["sha1-primary", "sha256-secondary"])
async def test_self_signed_device_connects_by_thumbprint(hub, tmp_path, slot):
    issued = self_signed("dx")
    sha1, sha256 = thumbprints(issued.cert_pem)
    other_sha1, _ = thumbprints(self_signed("other").cert_pem)
    if slot == "sha1-primary":
        register_self_signed(hub, "dx", sha1)
    else:
        register_self_signed(hub, "dx", other_sha1, sha256)
    async with connected(x509_client(hub, tmp_path, "dx", issued)) as client:
        await asyncio.wait_for(client.send_message("x509 hello"), STEP)
        assert hub.registry.identity("dx").connection_state == "Connected"
    assert auth_type_of_telemetry(hub, "dx") == "x509Certificate"


async def test_unknown_self_signed_certificate_is_refused(hub, tmp_path):
    registered_sha1, _ = thumbprints(self_signed("dx").cert_pem)
    register_self_signed(hub, "dx", registered_sha1)
    await refused(x509_client(hub, tmp_path, "dx", self_signed("dx")), CredentialError)
    assert hub.registry.identity("dx").connection_state == "Disconnected"


async def test_ca_signed_device_connects_when_cn_is_the_device_id(hub, tmp_path, maker_ca):
    hub.registry.put_device("dca", {"authentication": {"type": "certificateAuthority"}}, None)
    async with connected(x509_client(hub, tmp_path, "dca", maker_ca.issue("dca"))) as client:
        await asyncio.wait_for(client.send_message("ca hello"), STEP)
    assert auth_type_of_telemetry(hub, "dca") == "x509Ca"


@needs_port_443
async def test_ca_signed_device_connects_over_websockets(hub, tmp_path, maker_ca):
    # The client certificate goes in the TLS handshake on 443 as on 8883.
    hub.registry.put_device("dca", {"authentication": {"type": "certificateAuthority"}}, None)
    issued = maker_ca.issue("dca")
    async with connected(x509_client(hub, tmp_path, "dca", issued, websockets=True)) as client:
        await asyncio.wait_for(client.send_message("ca hello over ws"), STEP)
        twin = await asyncio.wait_for(client.get_twin(), STEP)
    assert twin["reported"] == {"$version": 1}
    assert auth_type_of_telemetry(hub, "dca") == "x509Ca"


@pytest.mark.parametrize("case", ["untrusted-ca", "wrong-cn", "sas-device"])
async def test_ca_signed_device_is_refused(hub, tmp_path, maker_ca, case):
    if case == "sas-device":
        hub.add_sas_device("dca")
    else:
        hub.registry.put_device("dca", {"authentication": {"type": "certificateAuthority"}}, None)
    issuer = CertificateAuthority.create("rogue CA") if case == "untrusted-ca" else maker_ca
    issued = issuer.issue("someone-else" if case == "wrong-cn" else "dca")
    await refused(x509_client(hub, tmp_path, "dca", issued), CredentialError)


def intermediate_of(root):
    """A CA one level below `root`, as device makers often issue from."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maker intermediate")])
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root.key.public_key()),
            critical=False,
        )
        .sign(root.key, hashes.SHA256())
    )
    return CertificateAuthority(key, cert)


async def test_device_sending_its_intermediate_is_verified_through_it(hub, tmp_path, maker_ca):
    hub.registry.put_device("dchain", {"authentication": {"type": "certificateAuthority"}}, None)
    intermediate = intermediate_of(maker_ca)
    leaf = intermediate.issue("dchain")
    with_chain = IssuedCertificate(leaf.cert_pem + intermediate.cert_pem, leaf.key_pem)
    async with connected(x509_client(hub, tmp_path, "dchain", with_chain)) as client:
        await asyncio.wait_for(client.send_message("via intermediate"), STEP)
    assert auth_type_of_telemetry(hub, "dchain") == "x509Ca"
    # Without the intermediate the chain cannot reach the trusted root.
    await refused(x509_client(hub, tmp_path, "dchain", leaf), CredentialError)
