"""`iot-bridge firmware scan` and `patch` through the real command line."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from bridge.cli import app
from bridge.firmware import DeviceIdSource, PatchOptions, load_recipes, patch
from tests.firmware.conftest import CORPUS

runner = CliRunner()
# Examples whose client ids cannot be the device id, and where it comes from instead.
EXAMPLE_IDS = {"edge_sensor": "env:THING_NAME", "door_sensor": "literal:door-7"}


def test_scan_json_lists_touch_points_with_verdicts():
    result = runner.invoke(
        app, ["firmware", "scan", str(CORPUS / "python_paho/gateway"), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["stacks"] == ["python_paho"]
    points = [p for f in report["files"] for p in f["touch_points"]]
    assert {p["verdict"] for p in points} == {"rewritten", "needs_human"}
    assert {"file", "line", "kind", "stack", "verdict", "reason"} <= set(points[0])


def test_scan_writes_markdown_and_html(tmp_path):
    for fmt, marker in (("md", "| file | line |"), ("html", "<!DOCTYPE html>")):
        out = tmp_path / f"report.{fmt}"
        result = runner.invoke(
            app, ["firmware", "scan", str(CORPUS), "--format", fmt, "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert marker in out.read_text()


def test_patch_prints_a_diff_that_git_apply_accepts(tmp_path):
    repo = tmp_path / "gateway"
    shutil.copytree(CORPUS / "python_paho/gateway", repo)
    result = runner.invoke(
        app, ["firmware", "patch", str(repo), "--hub", "myhub.azure-devices.net"]
    )
    assert result.exit_code == 0, result.output
    diff = result.stdout
    assert diff.startswith("--- a/deploy.sh")  # the describe-endpoint lookup is replaced
    assert "\n--- a/gateway.py" in diff
    (tmp_path / "change.diff").write_text(diff)
    git = shutil.which("git")
    assert git is not None
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    subprocess.run(
        [git, "-C", str(repo), "apply", "--unidiff-zero", str(tmp_path / "change.diff")],
        check=True,
    )
    assert "IOTHUB_HOST" in (repo / "gateway.py").read_text()
    deploy = (repo / "deploy.sh").read_text()
    assert "AWS_IOT_ENDPOINT=myhub.azure-devices.net\n" in deploy
    assert "describe-endpoint" not in deploy


def test_patch_apply_and_package_an_ota_artifact(tmp_path):
    repo = tmp_path / "thermostat"
    shutil.copytree(CORPUS / "python_awsiotsdk/thermostat", repo)
    artifact = tmp_path / "ota" / "thermostat.tar.gz"
    args = ["firmware", "patch", str(repo), "--hub", "myhub.azure-devices.net", "--apply"]
    result = runner.invoke(
        app, [*args, "--package", str(artifact), "--package-url", "https://ota.example/t.tar.gz"]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stderr.splitlines()[0])
    data = artifact.read_bytes()
    assert manifest == {
        "url": "https://ota.example/t.tar.gz",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    with tarfile.open(artifact) as archive:
        patched = archive.extractfile("thermostat.py").read().decode()
    assert patched == (repo / "thermostat.py").read_text()
    assert "IoTHubDeviceClient.create_from_x509_certificate" in patched
    # The same tree packs to the same bytes, so the job document's hash is stable.
    again = tmp_path / "again.tar.gz"
    runner.invoke(
        app,
        [
            "firmware",
            "patch",
            str(repo),
            "--hub",
            "myhub.azure-devices.net",
            "--package",
            str(again),
        ],
    )
    assert again.read_bytes() == data


def test_bad_device_id_source_is_refused(tmp_path):
    result = runner.invoke(
        app, ["firmware", "patch", str(tmp_path), "--hub", "h", "--device-id-from", "mac"]
    )
    assert result.exit_code != 0


def test_every_recipe_is_discovered_and_has_examples():
    recipes = load_recipes()
    names = {recipe.name for recipe in recipes}
    assert {"micropython_umqtt", "python_paho", "python_awsiotsdk", "generic"} <= names
    assert recipes[-1].name == "generic"
    root = Path(__import__("firmware_patches").__file__).parent
    for recipe in recipes:
        examples = root / recipe.name / "examples"
        assert any(examples.glob("*/before/*")), f"{recipe.name} has no examples"


def test_recipe_examples_patch_to_their_after(tmp_path):
    root = Path(__import__("firmware_patches").__file__).parent
    examples = sorted(root.glob("*/examples/*/after"))
    assert len(examples) >= 4
    for after in examples:
        repo = tmp_path / after.parent.parent.parent.name
        shutil.copytree(after.parent / "before", repo)
        device_id_from = EXAMPLE_IDS.get(after.parent.name, "client-id")
        options = PatchOptions(
            hub="myhub.azure-devices.net", device_id=DeviceIdSource.parse(device_id_from)
        )
        changed = patch(repo, options).changed
        for file in after.rglob("*"):
            if file.is_file():
                assert changed[file.relative_to(after).as_posix()] == file.read_text()


def test_scan_verdicts_follow_the_device_id_source():
    path = str(CORPUS / "micropython_umqtt/relay_robust")
    verdicts = {}
    for source in ("client-id", "literal:relay-0042"):
        result = runner.invoke(
            app, ["firmware", "scan", path, "--format", "json", "--device-id-from", source]
        )
        assert result.exit_code == 0, result.output
        points = [p for f in json.loads(result.stdout)["files"] for p in f["touch_points"]]
        main = [p for p in points if p["file"] == "main.py" and p["kind"] != "client_id"]
        verdicts[source] = {p["verdict"] for p in main}
    assert verdicts == {"client-id": {"needs_human"}, "literal:relay-0042": {"rewritten"}}


def test_auth_sas_from_the_command_line(tmp_path):
    repo = tmp_path / "thermostat"
    shutil.copytree(CORPUS / "python_awsiotsdk/thermostat", repo)
    args = ["firmware", "patch", str(repo), "--hub", "h.azure-devices.net", "--auth", "sas"]
    result = runner.invoke(app, [*args, "--sas-key-from", "env:THERMOSTAT_KEY"])
    assert result.exit_code == 0, result.output
    assert "+        symmetric_key=iothub_device_key()," in result.stdout
    assert "_iothub_os.environ['THERMOSTAT_KEY']" in result.stdout
    for bad in (["--auth", "psk"], ["--auth", "sas", "--sas-key-from", "vault:x"]):
        assert runner.invoke(app, [*args[:5], *bad]).exit_code != 0
