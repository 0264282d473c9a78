"""Discovery throughput and memory against the AWS stand-in, listing and with the fleet index.

For each estate size: build the estate in-process (moto + glue), then run
`iot-bridge discover` twice in a child process (so its peak RSS is its own) with the rate
budgets off: first with fleet indexing OFF (every shadow read with GetThingShadow), then
with REGISTRY_AND_SHADOW indexing and the estate's named shadow in the filter (shadows
come in SearchIndex pages). It reports things per second, peak memory and whether both
inventories are the same. The baseline, measured in the same run on the same estate, is a
naive sequential boto3 crawl (list, principals, shadows, certificate per thing) over a
sample, extrapolated.

    .venv/bin/python bench/discover.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from bridge_sim.aws.control_plane import control_plane
from bridge_sim.estate import EstateSpec, build_estate

SAMPLE = 300
INDEX_SHADOWS = {
    "thingIndexingMode": "REGISTRY_AND_SHADOW",
    "namedShadowIndexingMode": "ON",
    "filter": {"namedShadowNames": ["config"]},  # the estate's named shadow
}
# Different on every run, or on every call of the control plane's describe_endpoint.
_VOLATILE = ("generated_at", "fleet_indexing", "data_endpoint")


@dataclass(frozen=True)
class Run:
    """One discover run in a child process."""

    seconds: float
    peak_rss_mb: float
    output: Path


def clients(endpoint: str, region: str) -> tuple[Any, Any]:
    """boto3 iot and iot-data clients on the stand-in."""
    kwargs: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": region,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "config": botocore.config.Config(retries={"max_attempts": 1}),
    }
    return boto3.client("iot", **kwargs), boto3.client("iot-data", **kwargs)


def baseline(endpoint: str, region: str) -> float:
    """Things per second of a plain sequential boto3 crawl over the first SAMPLE things."""
    iot, data = clients(endpoint, region)
    started = time.perf_counter()
    things = iot.list_things(maxResults=SAMPLE)["things"]
    for thing in things:
        name = thing["thingName"]
        for arn in iot.list_thing_principals(thingName=name)["principals"]:
            iot.describe_certificate(certificateId=arn.rsplit("/", 1)[1])
        for shadow in [None, *data.list_named_shadows_for_thing(thingName=name)["results"]]:
            data.get_thing_shadow(thingName=name, **({"shadowName": shadow} if shadow else {}))
    return len(things) / (time.perf_counter() - started)


def discover(env: dict[str, str], output: Path, concurrency: int) -> Run:
    """Run the CLI in a child process; its own peak RSS comes from wait4."""
    command = [
        sys.executable,
        "-m",
        "bridge",
        "discover",
        "--output",
        str(output),
        "--rate-scale",
        "0",
        "--concurrency",
        str(concurrency),
        "--no-resume",
    ]
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"discover failed with exit code {child.returncode}")
    return Run(seconds=elapsed, peak_rss_mb=usage.ru_maxrss / 1024, output=output)


def same_inventory(first: Path, second: Path) -> bool:
    """Whether two inventories hold the same estate (run-specific fields aside)."""
    documents = []
    for path in (first, second):
        with path.open() as text:
            document = json.load(text)
        for key in _VOLATILE:
            document.pop(key, None)
        documents.append(document)
    return documents[0] == documents[1]


def report(label: str, size: int, run: Run, base: float) -> str:
    """One line of figures for one discover run."""
    per_s = size / run.seconds
    return (
        f"  {label:<9} discover_s={run.seconds:7.1f}  things_per_s={per_s:8.1f}  "
        f"speedup={per_s / base:5.1f}x  peak_rss_mb={run.peak_rss_mb:7.1f}  "
        f"inventory_mb={run.output.stat().st_size / 1e6:6.1f}"
    )


def run(size: int, concurrency: int) -> None:
    """Build one estate and discover it both ways."""
    region = "us-east-1"
    with control_plane(region) as plane, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_estate(plane.moto, plane.shadows, EstateSpec(things=size, legacy_things=0))
        built = time.perf_counter() - started
        base = baseline(plane.moto.endpoint_url, region)
        print(
            f"things={size:>7}  estate_build_s={built:7.1f}  baseline_sequential_per_s={base:7.1f}",
            flush=True,
        )
        env = {
            **os.environ,
            "AWS_REGION": region,
            "AWS_ENDPOINT_URL": plane.moto.endpoint_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        listed = discover(env, Path(tmp) / "listed.json", concurrency)
        print(report("listing", size, listed, base), flush=True)
        iot, _data = clients(plane.moto.endpoint_url, region)
        iot.update_indexing_configuration(thingIndexingConfiguration=INDEX_SHADOWS)
        indexed = discover(env, Path(tmp) / "indexed.json", concurrency)
        same = same_inventory(listed.output, indexed.output)
        print(f"{report('indexing', size, indexed, base)}  same_inventory={same}", flush=True)


def main() -> None:
    """Parse the sizes and run each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.concurrency)


if __name__ == "__main__":
    main()
