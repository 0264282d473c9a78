"""`iot-bridge rehearse` end to end, as `make rehearse` runs it (smaller, without staying up).

The verdict is the rehearsal's own, so the test reads its report and checks each device's
fate against how that device was told to behave, and the numbers against each other.
"""

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from bridge_sim.rehearse import misbehaving

pytestmark = pytest.mark.timeout(600)

DEVICES = 22  # the smallest fleet whose last wave holds one device of each fault
REASONS = {
    "reject": "job execution REJECTED (reason: device refused the migration)",
    "azure-unreachable": "",  # its own FAILED report or the deadline, whichever comes first
    "vanish": "not seen on Azure by the deadline",
    "ignore-jobs": "not seen on Azure by the deadline",
    "claim-success": "",
}


async def test_the_rehearsal_migrates_the_fleet_and_proves_nothing_was_lost(tmp_path: Path):
    workdir = tmp_path / "rehearsal"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "rehearse", "--things", "16", "--no-stay-up",
        "--devices", str(DEVICES), "--deadline", "20",
        "--workdir", str(workdir), "--env-file", str(tmp_path / "sim.env"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 540)
    text = output.decode()
    assert process.returncode == 0, text

    inventory = json.loads((workdir / "inventory.json").read_text())
    assert len(inventory["things"]) == 16 + 5 + DEVICES  # estate, extras, simulated fleet
    plan = json.loads((workdir / "plan" / "migration-plan.json").read_text())
    assert {d["device_id"] for d in plan["devices"]} == {t["name"] for t in inventory["things"]}
    assert f"4/7 mirror: initial sync of {16 + 5 + DEVICES} devices" in text
    assert "5/7 live: 5 shadow changes reached their twins" in text

    report = json.loads((workdir / "verification.json").read_text())
    summary, devices = report["summary"], {d["device_id"]: d for d in report["devices"]}
    faults = {f"fleet-{i:02d}": f[0] for i, f in misbehaving(DEVICES).items()}
    assert sorted(set(faults.values())) == sorted(REASONS)  # every fault was rehearsed
    assert len(devices) == DEVICES  # every device accounted for
    for name, device in devices.items():
        assert device["problems"] == [], (name, device)
        assert device["identity_on_azure"], name
        assert device["twin_matches"], name
        assert device["lost"] == [], name
        assert device["on_azure"] == device["acknowledged"] > 0, name
        if name in faults:
            assert device["state"] == "rolled_back", (name, device)
            assert device["reason"].startswith(REASONS[faults[name]]), (name, device)
            assert device["direct"] == 0  # it never reached Azure: all relayed
        else:
            assert device["state"] == "finalized", (name, device)  # after the soak
            assert device["relayed"] > 0  # relayed while on AWS,
            assert device["direct"] > 0  # then sent by the device itself
            assert device["gap_seconds"] is not None
            assert device["back_on_aws"] > 0  # the reverse path carried its readings back
            assert device["missing_on_aws"] == []
    assert summary["verdict"] == "pass"
    assert summary["readings_lost"] == 0
    assert summary["states"] == {"finalized": DEVICES - len(faults), "rolled_back": len(faults)}
    assert "verdict: PASS" in text
    # The plan's routes, loaded into the emulator, put each reading where the AWS rule did.
    routed = re.search(r"route fleet_telemetry -> (\S+): (\d+) of (\d+) messages landed", text)
    assert routed is not None, text
    assert routed[2] == routed[3] != "0", routed[0]
    # The estate's sensor rules carried traffic too: readings their devices sent as
    # themselves, each but the one their WHERE clause drops (nothing else may land there).
    sensors = re.findall(r"route (\w+)_to_timestream -> \S+: (\d+) of (\d+) messages landed", text)
    assert len(sensors) == 4, text
    for sensor, landed, expected in sensors:
        assert landed == expected == "4", (sensor, landed, expected)
    assert "[WRONG]" not in text
    assert (workdir / "verification.txt").read_text().strip().endswith("verdict: PASS")

    assert "<svg" in (workdir / "cutover.html").read_text()
    # The summary and the plan, as pages with charts that open without a network.
    page = (workdir / "rehearsal.html").read_text()
    plan_page = (workdir / "plan" / "migration-plan.html").read_text()
    for html in (page, plan_page):
        assert "<svg" in html
        assert not re.search(r"https?://|(src|href)\s*=|@import|url\(", html)
    total = 16 + 5 + DEVICES
    assert f"<div class='n'>{total}</div><div class='l'>things on AWS</div>" in page
    assert f"<div class='n'>{total}</div><div class='l'>mirrored on Azure</div>" in page
    assert "aria-label='devices per state during the initial sync'" in page
    assert "aria-label='telemetry gap at cutover per device'" in page
    assert f"{DEVICES - len(faults)} finalized, {len(faults)} rolled back" in page
