"""Patched CPython device programs run against the emulator with X.509 thumbprint auth.

Each program is patched from the corpus, given a certificate whose thumbprint is
registered with Microsoft's registry manager, run as a subprocess, and judged only by
what the hub saw: telemetry with the awsTopic properties, and the twin read back with
IoTHubRegistryManager.
"""

from __future__ import annotations

import json
import signal

from azure.iot.hub.models import CloudToDeviceMethod
from msrest.exceptions import HttpOperationError

from tests.firmware.conftest import (
    copy_corpus,
    patch_repo,
    provision,
    reported,
    run_program,
    send_c2d,
    set_desired,
    start_program,
    telemetry,
    wait_for,
)


def finish(process, repo):
    (repo / "stop").write_text("")
    try:
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    return out, err


def test_paho_gateway_sends_telemetry_reports_and_follows_desired(hub, rm, tmp_path):
    repo = copy_corpus("python_paho/gateway", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"gateway.py", "deploy.sh"}
    provision(rm, repo, "gw-plant-7", "certs/device.pem.crt", "certs/private.pem.key")

    process = start_program(
        hub, repo, "gateway.py", extra_env={"AWS_IOT_ENDPOINT": "unused", "LISTEN_SECONDS": "30"}
    )
    try:
        wait_for(lambda: reported(rm, "gw-plant-7").get("online"), timeout=20)
        set_desired(rm, "gw-plant-7", {"interval": 0.02, "enabled": False})
        # The program's own delta handler acknowledges the delta in its reported state.
        wait_for(lambda: reported(rm, "gw-plant-7").get("enabled") is False, timeout=20)
    finally:
        finish(process, repo)

    events = telemetry(hub, "gw-plant-7")
    assert len(events) == 3
    assert {e.properties["awsTopic"] for e in events} == {"dt/meters/gw-plant-7/energy"}
    assert events[0].properties["awsTopic2"] == "meters"
    assert json.loads(events[0].body)["meter"] == "M-17"
    assert reported(rm, "gw-plant-7") == {
        "online": True,
        "meter": "M-17",
        "interval": 0.02,
        "enabled": False,
    }


def test_awsiotsdk_thermostat_on_azure_iot_device(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotsdk/thermostat", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"thermostat.py"}
    assert "awsiot" not in outcome.changed["thermostat.py"].split("<<<")[-1]
    device = "thermostat-42"
    provision(rm, repo, device, "certs/thermostat.cert.pem", "certs/thermostat.private.key")

    process = start_program(hub, repo, "thermostat.py", "--listen")
    try:
        wait_for(lambda: reported(rm, device).get("online"), timeout=20)
        set_desired(rm, device, {"setpoint": 22.0})
        wait_for(lambda: reported(rm, device).get("setpoint") == 22.0, timeout=20)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()

    events = telemetry(hub, device)
    assert len(events) == 3
    assert events[0].properties["awsTopic"] == "dt/thermostats/thermostat-42/temperature"
    assert events[0].content_type == "application/json"
    assert json.loads(events[0].body)["setpoint"] == 20.5
    assert reported(rm, device) == {"setpoint": 22.0, "mode": "heat", "online": True}


def test_paho_kiosk_with_makefile_endpoint_and_hostname_id(hub, rm, tmp_path):
    repo = copy_corpus("python_paho/kiosk", tmp_path)
    # The client id is the host name, so the device id comes from the environment.
    outcome = patch_repo(repo, hub.hostname, "env:KIOSK_ID")
    assert set(outcome.changed) == {"kiosk.py", "Makefile"}
    assert "iothub_device(_iothub_os.environ['KIOSK_ID'])" in outcome.changed["kiosk.py"]
    provision(rm, repo, "kiosk-station-4", "kiosk.crt", "kiosk.key")

    result = run_program(hub, repo, "kiosk.py", extra_env={"KIOSK_ID": "kiosk-station-4"})
    assert result.returncode == 0, result.stderr

    events = telemetry(hub, "kiosk-station-4")
    assert len(events) == 2
    # The topic names the host, as the AWS program did; the identity is the device id.
    assert events[0].properties["awsTopic1"] == "sales"
    assert json.loads(events[1].body) == {"sale": 1, "item": "coffee", "price": 2.5}


def test_paho_agent_reads_named_shadow_desired_and_reports(hub, rm, tmp_path):
    repo = copy_corpus("python_paho/fleet_agent", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert set(outcome.changed) == {"agent.py", "agent.json"}  # vendor/ and keys/ are left alone
    provision(rm, repo, "plc-gw-11", "certs/plc-gw-11.cert.pem", "certs/plc-gw-11.private.key")
    set_desired(rm, "plc-gw-11", {"shadows": {"settings": {"line": "L3"}}})

    result = run_program(hub, repo, "agent.py")
    assert result.returncode == 0, result.stderr

    status = {"line": "L3", "settings_loaded": True}
    assert reported(rm, "plc-gw-11") == {"shadows": {"settings": status}}
    [event] = telemetry(hub, "plc-gw-11")
    assert event.properties["awsTopic"] == "status/plc-gw-11"
    assert json.loads(event.body) == status


def test_awsiotsdk_edge_sensor_named_shadow_get_alarm_and_command(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotsdk/edge_sensor", tmp_path)
    # A uuid client id cannot be the device id: take THING_NAME from the unit's environment.
    outcome = patch_repo(repo, hub.hostname, "env:THING_NAME")
    assert set(outcome.changed) == {"sensor.py", "requirements.txt"}
    assert outcome.changed["requirements.txt"].splitlines()[:2] == [
        "awsiotsdk==1.21.0",
        "azure-iot-device>=2.14",
    ]
    device = "vib-press-2"
    provision(rm, repo, device, "cert.pem", "key.pem")
    set_desired(rm, device, {"shadows": {"thresholds": {"alarm": 0.5}}})

    env = {
        "AWS_IOT_ENDPOINT": "unused",
        "THING_NAME": device,
        "CERT_PATH": "cert.pem",
        "KEY_PATH": "key.pem",
        "LISTEN_SECONDS": "30",
    }
    process = start_program(hub, repo, "sensor.py", extra_env=env)
    try:
        wait_for(lambda: len(telemetry(hub, device)) == 2, timeout=20)
        send_c2d(hub, device, json.dumps({"cmd": "recalibrate"}))
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        process.kill()

    alarm, reading, ack = telemetry(hub, device)
    assert alarm.properties["awsTopic"] == "alarms/vibration/vib-press-2"
    assert json.loads(alarm.body) == {"peak": 0.7, "limit": 0.5}
    assert reading.properties["awsTopic"] == "dt/vibration/vib-press-2"
    assert ack.properties["awsTopic"] == "cmd/vibration/vib-press-2/ack"
    assert json.loads(ack.body) == {"ack": "recalibrate", "topic": "cmd/vibration/vib-press-2"}


def test_awsiotsdk_jobs_runner_takes_jobs_as_direct_methods(hub, rm, tmp_path):
    repo = copy_corpus("python_awsiotsdk/jobs_runner", tmp_path)
    outcome = patch_repo(repo, hub.hostname)
    assert "runner.py" in outcome.changed
    device = "ota-runner-1"
    provision(rm, repo, device, "device.pem.crt", "private.pem.key")

    process = start_program(hub, repo, "runner.py", device)

    def invoke(name, document):
        method = CloudToDeviceMethod(
            method_name=name, payload=document, response_timeout_in_seconds=30
        )
        try:
            return rm.invoke_device_method(device, method)
        except HttpOperationError:
            return None  # the device has not subscribed to methods yet

    try:
        ok = wait_for(lambda: invoke("firmware-update", {"version": "2.0.1"}), timeout=20)
        failed = invoke("rollback", {"version": "1.9"})
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
    finally:
        process.kill()
    assert (ok.status, ok.payload) == (200, {"jobId": "firmware-update", "status": "SUCCEEDED"})
    assert (failed.status, failed.payload) == (500, {"jobId": "rollback", "status": "FAILED"})
    assert reported(rm, device)["jobs"] == {
        "firmware-update": {"status": "SUCCEEDED", "statusDetails": {"installed": "2.0.1"}},
        "rollback": {"status": "FAILED", "statusDetails": {"installed": "1.9"}},
    }
