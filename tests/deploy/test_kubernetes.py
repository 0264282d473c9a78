"""Every manifest validates against Kubernetes' schemas (offline), and says what it should."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from bridge.config import CloudSettings, Settings
from tests.deploy.helpers import DEPLOY, load_yaml_documents, secret_file_names, setting_names

K8S = DEPLOY / "kubernetes"
# The oldest Kubernetes the manifests must work on: unhealthyPodEvictionPolicy is GA in 1.31.
KUBERNETES_VERSION = "1.31.0"
SERVICEMONITOR_SCHEMA = K8S / "schemas" / "servicemonitor-v1.schema.json"


def resources() -> list[str]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return list(kustomization["resources"])


def documents() -> list[tuple[str, dict[str, Any]]]:
    files = sorted(K8S.glob("*.yaml"))
    found = []
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        found.extend((path.name, doc) for doc in load_yaml_documents(path))
    return found


def by_kind(kind: str) -> dict[str, Any]:
    matches = [doc for _, doc in documents() if doc["kind"] == kind]
    assert len(matches) == 1, kind
    return matches[0]


def test_kubernetes_validate_works_offline(monkeypatch):
    """Its schemas ship in the wheel: validation opens no connection."""

    def no_network(*_args, **_kwargs):
        raise AssertionError("kubernetes-validate tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    versions = {v.rsplit(".", 1)[0] for v in kubernetes_validate.utils.all_versions()}
    assert KUBERNETES_VERSION.rsplit(".", 1)[0] in versions
    kubernetes_validate.validate(by_kind("StatefulSet"), KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_they_exist():
    listed = resources()
    for name in listed:
        assert (K8S / name).is_file(), name
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # secrets.example.yaml documents the Secrets' shape and must never be applied.
    assert on_disk - set(listed) == {"secrets.example.yaml"}


@pytest.mark.parametrize(
    ("name", "doc"),
    [pytest.param(n, d, id=f"{n}:{d['kind']}") for n, d in documents()],
)
def test_manifest_is_valid(name, doc):
    if doc["apiVersion"].startswith("monitoring.coreos.com/"):
        schema = json.loads(SERVICEMONITOR_SCHEMA.read_text())
        jsonschema.validate(doc, schema)
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_broken_statefulset():
    broken = json.loads(json.dumps(by_kind("StatefulSet")))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbe"]["httpGet"]["port"] = {"name": "metrics"}  # wrong type
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    container["livenessProbe"]["httpGet"]["port"] = "metrics"
    container["securityContext"]["readOnlyRootFileSystem"] = True  # misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_servicemonitor_schema_rejects_mistakes():
    schema = json.loads(SERVICEMONITOR_SCHEMA.read_text())
    good = by_kind("ServiceMonitor")
    for mutate in (
        lambda d: d["spec"]["endpoints"][0].update(interval="30 seconds"),
        lambda d: d["spec"]["endpoints"][0].update(prot="metrics"),
        lambda d: d["spec"].pop("selector"),
        lambda d: d["spec"]["endpoints"][0].update(scheme="tcp"),
    ):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def pod_spec() -> dict[str, Any]:
    return by_kind("StatefulSet")["spec"]["template"]["spec"]


def test_statefulset_runs_one_hardened_replica():
    sts = by_kind("StatefulSet")
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["serviceName"] == by_kind("Service")["metadata"]["name"]
    spec = pod_spec()
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert pod_security["runAsUser"] == 10001  # the image's USER
    assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    # Read-only root: the store's volume and /tmp are the only writable paths.
    writable = {"/var/lib/iot-bridge", "/tmp"}  # noqa: S108 - the container's, not ours
    secrets = {"/var/run/secrets/iot-bridge/aws", "/var/run/secrets/iot-bridge/settings"}
    assert set(mounts) == writable | secrets
    for path in secrets:
        assert mounts[path]["readOnly"] is True
    claims = {c["metadata"]["name"] for c in by_kind("StatefulSet")["spec"]["volumeClaimTemplates"]}
    assert mounts["/var/lib/iot-bridge"]["name"] in claims


def test_secrets_are_mounted_files_never_environment_variables():
    spec = pod_spec()
    (container,) = spec["containers"]
    assert "env" not in container, "secrets come from files, not the environment"
    config = by_kind("ConfigMap")["data"]
    mounted = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["AWS_IOT_BRIDGE_CERT"].startswith(mounted["aws"] + "/")
    assert config["AWS_IOT_BRIDGE_KEY"].startswith(mounted["aws"] + "/")
    assert config["BRIDGE_SECRETS_DIR"] == mounted["secrets"]
    secret_names = {n for n, f in CloudSettings.model_fields.items() if "SecretStr" in str(f)}
    assert not secret_names & set(config), "a secret in the ConfigMap"
    volumes = {v["name"]: v for v in spec["volumes"]}
    examples = {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == "Secret"}
    for name, doc in documents():
        if doc["kind"] == "Secret":
            assert name == "secrets.example.yaml"
            assert set(doc["stringData"].values()) == {"<from secret>"}
    settings_secret = examples[volumes["secrets"]["secret"]["secretName"]]
    # Every key becomes a file the bridge reads: a key named otherwise would be ignored.
    assert set(settings_secret["stringData"]) <= secret_file_names()
    assert "IOTHUB_CONNECTION_STRING" in settings_secret["stringData"]
    # ...and none is also set in the ConfigMap, which the bridge would refuse as ambiguous.
    assert not set(settings_secret["stringData"]) & set(config)
    assert examples[volumes["aws"]["secret"]["secretName"]]["type"] == "kubernetes.io/tls"


def test_configmap_names_and_values_are_settings_the_daemon_reads(monkeypatch, tmp_path):
    config = by_kind("ConfigMap")["data"]
    (container,) = pod_spec()["containers"]
    names = set(config) | {env["name"] for env in container.get("env", [])}
    assert names <= setting_names(), names - setting_names()
    for key in list(os.environ):
        if key.startswith(("BRIDGE_", "AWS_", "IOTHUB_", "AZURE_")):
            monkeypatch.delenv(key)
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    # The mounted Secret, as the pod sees it (a directory of files named after settings).
    mounted = tmp_path / "settings"
    mounted.mkdir()
    connection = "HostName=hub.example;SharedAccessKeyName=bridge;SharedAccessKey=a2V5"
    (mounted / "IOTHUB_CONNECTION_STRING").write_text(connection + "\n")
    monkeypatch.setenv("BRIDGE_SECRETS_DIR", str(mounted))
    settings = Settings(_env_file=None)
    cloud = CloudSettings(_env_file=None)
    assert cloud.IOTHUB_CONNECTION_STRING is not None
    assert cloud.IOTHUB_CONNECTION_STRING.get_secret_value() == connection
    assert settings.http.host == "0.0.0.0"
    assert settings.store.dsn.startswith("sqlite:////var/lib/iot-bridge/")
    assert settings.iothub.tier == "S1"
    assert str(cloud.AWS_IOT_ROOT_CA) == "/etc/ssl/certs/ca-certificates.crt"
    port = next(p for p in container["ports"] if p["name"] == "metrics")["containerPort"]
    assert settings.http.port == port


def test_network_policy_allows_only_what_the_bridge_needs():
    policy = by_kind("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    (source,) = ingress["from"]
    assert source == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert [p["port"] for p in ingress["ports"]] == ["metrics"]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {
        (53, "UDP"),
        (53, "TCP"),
        (443, "TCP"),
        (8883, "TCP"),
        (5671, "TCP"),
        (5432, "TCP"),
    }


def test_service_and_servicemonitor_find_the_pods():
    labels = by_kind("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    monitor = by_kind("ServiceMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["endpoints"]} <= {
        p["name"] for p in service["spec"]["ports"]
    }
    pdb = by_kind("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_namespace_enforces_restricted_pod_security():
    namespace = by_kind("Namespace")
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert namespace["metadata"]["name"] == kustomization["namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_schema_file_is_our_own_subset():
    schema = json.loads(Path(SERVICEMONITOR_SCHEMA).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
