"""C device code: patched with tree-sitter, parsed with no new error nodes, compiled by gcc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from bridge.firmware import PatchOptions, patch
from bridge.mapping.topics import topic_properties
from firmware_patches._c import error_count, parse_c
from tests.firmware.conftest import CORPUS

STUBS = Path(__file__).parent / "stubs"
HUB = "myhub.azure-devices.net"
GCC = shutil.which("gcc")


PROGRAMS = ["freertos_meter", "freertos_lts_sensor", "freertos_keys_vendored"]


def _patched(tmp_path, name):
    repo = tmp_path / name
    shutil.copytree(CORPUS / "c_coremqtt" / name, repo)
    originals = {p: p.read_bytes() for p in repo.rglob("*") if p.suffix in {".c", ".h"}}
    outcome = patch(repo, PatchOptions(hub=HUB), apply=True)
    assert outcome.changed
    return repo, originals


@pytest.fixture
def meter(tmp_path):
    return _patched(tmp_path, "freertos_meter")


@pytest.mark.parametrize("name", PROGRAMS)
def test_patched_c_parses_without_new_errors(tmp_path, name):
    _, originals = _patched(tmp_path, name)
    for path, before in originals.items():
        assert error_count(parse_c(path.read_bytes())) <= error_count(parse_c(before))
        assert error_count(parse_c(path.read_bytes())) == 0


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
@pytest.mark.parametrize("name", PROGRAMS)
def test_every_patched_c_file_compiles(tmp_path, name):
    repo, originals = _patched(tmp_path, name)
    includes = ["-I", str(STUBS), "-I", str(repo), "-I", str(repo / "include")]
    for path in originals:
        if path.suffix == ".c":
            flags = ["-std=c11", "-Wall", "-Werror", "-fsyntax-only", *includes]
            subprocess.run([GCC, *flags, str(path)], check=True)


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_patched_demo_compiles_and_carries_iothub_settings(meter, tmp_path):
    repo, _ = meter
    flags = ["-std=c11", "-Wall", "-Werror", "-I", str(STUBS), "-I", str(repo)]
    subprocess.run([GCC, *flags, "-fsyntax-only", str(repo / "mqtt_demo.c")], check=True)
    probe = tmp_path / "probe.c"
    probe.write_text(
        '#include <stdio.h>\n#include "demo_config.h"\n'
        "int main(void) {\n"
        '  printf("%s\\n%s\\n%s\\n", democonfigMQTT_BROKER_ENDPOINT, democonfigIOTHUB_USERNAME,'
        " mqttexampleTOPIC);\n  return 0;\n}\n"
    )
    binary = tmp_path / "probe"
    subprocess.run([GCC, *flags, "-o", str(binary), str(probe)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    endpoint, user, topic = out.splitlines()
    assert endpoint == HUB
    assert user == f"{HUB}/meter-0099/?api-version=2021-04-12"
    prefix, _, bag = topic.partition("/messages/events/")
    assert prefix == "devices/meter-0099"
    properties = dict(pair.split("=") for pair in bag.split("&"))
    assert {k: unquote(v) for k, v in properties.items()} == topic_properties(
        "dt/meters/meter-0099/kwh"
    )


def test_patching_c_twice_changes_nothing(meter):
    repo, _ = meter
    assert patch(repo, PatchOptions(hub=HUB)).changed == {}


@pytest.mark.skipif(GCC is None, reason="gcc is not installed")
def test_esp_aws_iot_coremqtt_demo_gets_user_name_and_roots_from_its_own_file(tmp_path):
    # esp-aws-iot 202x: coreMQTT with settings from sdkconfig, no demo_config.h.
    repo, _ = _patched(tmp_path, "esp_aws_iot_mutual_auth")
    source = repo / "main/mqtt_demo_mutual_auth.c"
    assert f'CONFIG_MQTT_BROKER_ENDPOINT="{HUB}"' in (repo / "sdkconfig").read_text()
    header = tmp_path / "sdkconfig.h"
    lines = (repo / "sdkconfig").read_text().splitlines()
    header.write_text("".join(f"#define {k} {v}\n" for k, v in (x.split("=", 1) for x in lines)))
    probe = tmp_path / "probe.c"
    probe.write_text(
        f'#include "{source}"\n#include <stdio.h>\n'
        'const char root_cert_auth_start[] __asm__("_binary_root_cert_auth_crt_start") = "aws";\n'
        'const char root_cert_auth_end[] __asm__("_binary_root_cert_auth_crt_end") = "";\n'
        "MQTTStatus_t MQTT_Connect(MQTTContext_t *c, const MQTTConnectInfo_t *i,"
        " const MQTTPublishInfo_t *w, uint32_t t, bool *s) {\n"
        '  printf("connect client_id=%.*s username=%.*s keepalive=%u\\n",'
        " i->clientIdentifierLength, i->pClientIdentifier, i->userNameLength, i->pUserName,"
        " (unsigned)i->keepAliveIntervalSec);\n"
        "  (void)c; (void)w; (void)t; (void)s; return MQTTSuccess;\n}\n"
        "int main(void) {\n"
        "  NetworkContext_t network; MQTTContext_t context;\n"
        "  connectToServer(&network); establishMqttSession(&context);\n"
        '  printf("%s\\n%d\\n%d\\n", network.pcHostname,'
        " (int)(network.pcServerRootCASize == sizeof(IOTHUB_ROOT_CAS)),"
        ' strstr(network.pcServerRootCA, "MIIFqDCCA5CgAwIBAgIQHtOXCV/YtLNHcB6qvn9Fsz") != NULL);\n'
        "  return 0;\n}\n"
    )
    binary = tmp_path / "probe"
    flags = ["-std=gnu11", "-Wall", "-Werror", "-I", str(STUBS), "-I", str(tmp_path)]
    subprocess.run([GCC, *flags, "-o", str(binary), str(probe)], check=True)
    out = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    connect, host, size_ok, microsoft_root = out.splitlines()
    assert (host, size_ok, microsoft_root) == (HUB, "1", "1")
    user = f"{HUB}/boiler-7/?api-version=2021-04-12"
    assert connect == f"connect client_id=boiler-7 username={user} keepalive=1177"
    assert error_count(parse_c(source.read_bytes())) == 0
    assert patch(repo, PatchOptions(hub=HUB)).changed == {}
