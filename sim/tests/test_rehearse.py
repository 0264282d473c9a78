"""`iot-bridge rehearse` end to end, as `make rehearse` runs it (without staying up)."""

import asyncio
import json
import re
import sys
from pathlib import Path


async def test_rehearsal_discovers_the_estate_and_plans_it(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "rehearse", "--things", "16", "--no-stay-up",
        "--workdir", str(tmp_path / "rehearsal"), "--env-file", str(tmp_path / "sim.env"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 170)
    assert process.returncode == 0, output.decode()
    inventory = json.loads((tmp_path / "rehearsal" / "inventory.json").read_text())
    assert len(inventory["things"]) == 16 + 5 + 5  # estate, extras, simulated fleet
    plan = json.loads((tmp_path / "rehearsal" / "plan" / "migration-plan.json").read_text())
    assert {d["device_id"] for d in plan["devices"]} == {t["name"] for t in inventory["things"]}
    assert (tmp_path / "rehearsal" / "plan" / "landing-zone.auto.tfvars.json").exists()
    assert b"3/6 discovered 26 things" in output
    assert b"4/6 mirror: initial sync of 26 devices" in output
    assert b"26 mirrored, 0 failed" in output
    assert b"5/6 live: 5 shadow changes reached their twins" in output
    assert b"6/6 cutover: canary wave done" in output
    assert b"4 of 5 on Azure" in output
    assert b"fleet-04     rolled_back  job execution REJECTED" in output
    # The summary and the plan, as pages with charts that open without a network.
    summary = (tmp_path / "rehearsal" / "rehearsal.html").read_text()
    plan_page = (tmp_path / "rehearsal" / "plan" / "migration-plan.html").read_text()
    for page in (summary, plan_page):
        assert "<svg" in page
        assert not re.search(r"https?://|(src|href)\s*=|@import|url\(", page)
    assert "<div class='n'>26</div><div class='l'>things on AWS</div>" in summary
    assert "<div class='n'>26</div><div class='l'>mirrored on Azure</div>" in summary
    assert "aria-label='devices per state during the initial sync'" in summary
    assert "5 changes, each timed" in summary
