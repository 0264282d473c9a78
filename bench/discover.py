"""Discovery throughput and memory against the AWS stand-in.

For each estate size: build the estate in-process (moto + glue), then run
`iot-bridge discover` in a child process (so its peak RSS is its own) with the rate
budgets off, and report things per second and the child's peak memory. The baseline,
measured in the same run on the same estate, is a naive sequential boto3 crawl
(list, principals, shadows, certificate per thing) over a sample, extrapolated.

    .venv/bin/python bench/discover.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import botocore.config

from bridge.sim.aws.control_plane import control_plane
from bridge.sim.estate import EstateSpec, build_estate

SAMPLE = 300


def baseline(endpoint: str, region: str) -> float:
    """Things per second of a plain sequential boto3 crawl over the first SAMPLE things."""
    kwargs = {
        "endpoint_url": endpoint,
        "region_name": region,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
        "config": botocore.config.Config(retries={"max_attempts": 1}),
    }
    iot, data = boto3.client("iot", **kwargs), boto3.client("iot-data", **kwargs)
    started = time.perf_counter()
    things = iot.list_things(maxResults=SAMPLE)["things"]
    for thing in things:
        name = thing["thingName"]
        for arn in iot.list_thing_principals(thingName=name)["principals"]:
            iot.describe_certificate(certificateId=arn.rsplit("/", 1)[1])
        for shadow in [None, *data.list_named_shadows_for_thing(thingName=name)["results"]]:
            data.get_thing_shadow(thingName=name, **({"shadowName": shadow} if shadow else {}))
    return len(things) / (time.perf_counter() - started)


def run(size: int, concurrency: int) -> None:
    with control_plane("us-east-1") as plane, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_estate(plane.moto, plane.shadows, EstateSpec(things=size, legacy_things=0))
        built = time.perf_counter() - started
        base = baseline(plane.moto.endpoint_url, "us-east-1")
        env = {
            **os.environ,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": plane.moto.endpoint_url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        output = Path(tmp) / "inventory.json"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        subprocess.run(  # noqa: S603 - our own CLI
            [
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
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        peak_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
        print(
            f"things={size:>7}  estate_build_s={built:7.1f}  discover_s={elapsed:7.1f}  "
            f"things_per_s={size / elapsed:8.1f}  baseline_sequential_per_s={base:7.1f}  "
            f"speedup={size / elapsed / base:4.1f}x  peak_rss_mb={peak_mb:7.1f}  "
            f"inventory_mb={output.stat().st_size / 1e6:6.1f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.concurrency)


if __name__ == "__main__":
    main()
