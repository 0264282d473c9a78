import json

import jsonschema
import pytest
from pydantic import ValidationError

from bridge.cutover.job import SCHEMA_PATH, THING_NAME, JobDocument, job_schema
from bridge.cutover.wave import WaveSpec


def test_published_schema_matches_the_model():
    assert SCHEMA_PATH.read_text() == job_schema(), (
        "schemas/cutover-job.schema.json is stale: run `python -m bridge.cutover.job`"
    )


def _document(**extra):
    return {
        "operation": "migrate-to-azure-iot-hub",
        "version": "1",
        "hub": {"hostName": "fleet.azure-devices.net"},
        "deviceId": THING_NAME,
        "auth": {"mode": "x509-thumbprint"},
        "trustAnchors": ["DigiCert Global Root G2", "Microsoft RSA Root CA 2017"],
        "fallbackDeadlineSeconds": 120,
        **extra,
    }


def test_a_wave_document_round_trips_and_validates_against_the_schema():
    schema = json.loads(SCHEMA_PATH.read_text())
    firmware = {"url": "https://example.com/fw.bin", "size": 10, "sha256": "a" * 64}
    document = JobDocument.model_validate(_document(firmware=firmware))
    wire = document.wire()
    jsonschema.validate(wire, schema)
    assert wire == _document(firmware=firmware)
    assert document.device_for("sensor-7") == "sensor-7"
    assert JobDocument.model_validate(_document(deviceId="x")).device_for("sensor-7") == "x"


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "reboot"},
        {"version": "2"},
        {"auth": {"mode": "password"}},
        {"trustAnchors": []},
        {"fallbackDeadlineSeconds": 0},
        {"unexpected": 1},
    ],
)
def test_schema_and_model_refuse_the_same_documents(change):
    document = _document(**change)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    with pytest.raises(ValidationError):
        JobDocument.model_validate(document)


def test_wave_job_settings_carry_rollout_abort_and_timeout():
    spec = WaveSpec(devices=["a", "b", "c"], abort_threshold=0.3, deadline_seconds=90)
    settings = spec.job_settings()
    assert settings["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 60}
    assert settings["abortConfig"]["criteriaList"][0]["thresholdPercentage"] == 30
    assert settings["timeoutConfig"] == {"inProgressTimeoutInMinutes": 2}
    with pytest.raises(ValidationError):
        WaveSpec(devices=[])
