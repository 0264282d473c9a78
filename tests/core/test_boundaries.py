import json
import subprocess
import sys

FORBIDDEN = ("bridge_sim", "bridge.aws", "bridge.azure", "boto", "aiobotocore", "azure", "awsiot")

PROBE = (
    "import json, sys, bridge.core.machine, bridge.core.store;"
    " print(json.dumps(sorted(sys.modules)))"
)


def test_core_imports_nothing_of_aws_azure_or_the_simulators():
    # A fresh interpreter: what this test process imported says nothing about core.
    listing = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", PROBE],
        capture_output=True,
        check=True,
        text=True,
    )
    loaded = json.loads(listing.stdout)
    assert "bridge.core.store.postgres" in loaded
    assert [name for name in loaded if name.startswith(FORBIDDEN)] == []
