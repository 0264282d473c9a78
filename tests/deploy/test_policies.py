"""The least-privilege files are well formed and allow every AWS IoT call the code makes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import botocore.session
from botocore import xform_name

from tests.deploy.helpers import DEPLOY, ROOT

POLICIES = DEPLOY / "policies"
PLACEHOLDERS = {"${AWS_REGION}": "eu-west-1", "${AWS_ACCOUNT_ID}": "123456789012"}
CUTOVER = {
    "iot:CreateJob",
    "iot:DescribeJob",
    "iot:ListJobExecutionsForJob",
    "iot:DescribeJobExecution",
    "iot:CancelJob",
    "iot:UpdateCertificate",
    "iot:DetachPolicy",
    "iot:AttachPolicy",
}


def product_sources() -> dict[Path, str]:
    """The product's modules (the stand-ins are a distribution of their own, in sim/)."""
    return {path: path.read_text() for path in (ROOT / "bridge").rglob("*.py")}


def aws_operations() -> dict[str, str]:
    """snake_case client method -> IAM action, for the iot and iot-data services."""
    session = botocore.session.get_session()
    operations = {}
    for service in ("iot", "iot-data"):
        for name in session.get_service_model(service).operation_names:
            # IAM names both services' actions iot:<OperationName> (GetThingShadow too).
            operations[xform_name(name)] = f"iot:{name}"
    return operations


def called_actions(sources: dict[Path, str]) -> dict[str, set[str]]:
    """IAM action -> modules calling it, as "name" (AwsApi.call/pages) or .name(...)."""
    found: dict[str, set[str]] = {}
    for method, action in aws_operations().items():
        quoted = re.compile(rf"""["']{method}["']""")
        # Bare one-word methods (publish) also name MQTT calls; only compound names count.
        direct = re.compile(rf"\.{method}\(") if "_" in method else None
        for path, text in sources.items():
            if quoted.search(text) or (direct and direct.search(text)):
                found.setdefault(action, set()).add(str(path.relative_to(ROOT)))
    return found


def iam_policy() -> dict:
    return json.loads((POLICIES / "aws-iam-policy.json").read_text())


def allowed(policy: dict) -> set[str]:
    actions = set()
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_iam_policy_shape():
    policy = iam_policy()
    assert policy["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in policy["Statement"]]
    assert len(sids) == len(set(sids))
    for statement in policy["Statement"]:
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
        assert statement["Effect"] == "Allow"
        assert all(re.fullmatch(r"iot:[A-Z][A-Za-z]+", a) for a in statement["Action"])
        assert "iot:*" not in statement["Action"]
    iam_actions = set(aws_operations().values())
    assert allowed(policy) <= iam_actions, allowed(policy) - iam_actions


def test_read_only_statement_only_reads():
    (read,) = [s for s in iam_policy()["Statement"] if s["Sid"] == "DiscoverAndMirrorReadOnly"]
    verbs = {re.match(r"iot:([A-Z][a-z]+)", a).group(1) for a in read["Action"]}
    assert verbs <= {"Describe", "Get", "List", "Search"}


def test_cutover_statement_is_apart_and_scoped():
    (cutover,) = [s for s in iam_policy()["Statement"] if s["Sid"].startswith("Cutover")]
    assert set(cutover["Action"]) | {"iot:DescribeJob"} >= CUTOVER
    assert cutover["Resource"] != "*"
    assert all(
        r.startswith("arn:aws:iot:${AWS_REGION}:${AWS_ACCOUNT_ID}:") for r in cutover["Resource"]
    )
    assert "arn:aws:iot:${AWS_REGION}:${AWS_ACCOUNT_ID}:job/iot-bridge-*" in cutover["Resource"]
    assert allowed(iam_policy()) >= CUTOVER


def test_every_iot_call_in_the_code_is_allowed():
    calls = called_actions(product_sources())
    # The finder must see the calls we know are there, or it proves nothing.
    assert {"iot:ListThings", "iot:DescribeThing", "iot:GetThingShadow"} <= set(calls)
    missing = {a: sorted(w) for a, w in calls.items() if a not in allowed(iam_policy())}
    assert not missing, f"add to deploy/policies/aws-iam-policy.json: {missing}"


def test_a_new_call_without_policy_fails():
    new_module = {ROOT / "bridge" / "new.py": 'await iot.call("delete_thing", thingName=name)\n'}
    assert set(called_actions(new_module)) - allowed(iam_policy()) == {"iot:DeleteThing"}


def test_readme_least_privilege_actions_are_allowed():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Least privilege.**") :].split("\n\n")[0]
    control_plane = {f"iot:{a}" for a in re.findall(r"`iot:([A-Z][A-Za-z]+)`", section)}
    data_plane = {"iot:Connect", "iot:Subscribe", "iot:Receive", "iot:Publish"}
    assert control_plane - data_plane <= allowed(iam_policy())


def test_iot_policy_is_the_one_the_stand_in_enforces():
    from bridge_sim.aws import standin  # noqa: PLC0415 - the stand-ins' own distribution

    text = (POLICIES / "aws-iot-policy.json").read_text()
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    expected = standin.bridge_policy(
        PLACEHOLDERS["${AWS_REGION}"], PLACEHOLDERS["${AWS_ACCOUNT_ID}"]
    )
    assert json.loads(text) == expected


def test_azure_access_rights():
    azure = json.loads((POLICIES / "azure-iothub-access.json").read_text())
    rights = {r.strip() for r in azure["sharedAccessPolicy"]["rights"].split(",")}
    assert rights == {"RegistryRead", "RegistryWrite", "ServiceConnect"}
    roles = {(a["role"], a["roleDefinitionId"]) for a in azure["roleAssignments"]}
    assert roles == {
        ("IoT Hub Data Contributor", "4fc6c259-987e-4a07-842e-c321cc9d413f"),
        ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
    }
    blob_scopes = {a["scope"] for a in azure["roleAssignments"] if a["role"].startswith("Storage")}
    assert all("/blobServices/default/containers/" in scope for scope in blob_scopes)
