"""The rehearsal stack is structurally sound (no container engine here to run it)."""

from __future__ import annotations

import json

import yaml

from tests.deploy.helpers import DEPLOY, ROOT, setting_names

COMPOSE = DEPLOY / "compose.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_services():
    services = compose()["services"]
    assert set(services) == {"sim", "bridge", "postgres", "prometheus", "grafana"}


def test_builds_point_at_existing_dockerfiles():
    for name, service in compose()["services"].items():
        if "build" not in service:
            assert ":" in service["image"], f"{name}: pin the image tag"
            assert not service["image"].endswith(":latest"), name
            continue
        context = (COMPOSE.parent / service["build"]["context"]).resolve()
        assert context == ROOT
        assert (context / service["build"]["dockerfile"]).is_file(), name
    assert compose()["services"]["bridge"]["build"]["dockerfile"] == "Dockerfile"


def test_bind_mounts_exist():
    named = set(compose().get("volumes", {}))
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
            else:
                assert source in named, f"{name}: undeclared volume {source}"


def test_references_between_services_resolve():
    services = compose()["services"]
    for name, service in services.items():
        depends = service.get("depends_on", [])
        for other in depends if isinstance(depends, list) else depends.keys():
            assert other in services, f"{name} depends on {other}"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.split(":", 1)[1] in services


def test_bridge_environment_names_are_settings():
    bridge = compose()["services"]["bridge"]
    names = set(bridge["environment"])
    assert names <= setting_names(), names - setting_names()
    assert bridge["environment"]["BRIDGE_STORE__DSN"].startswith("postgresql://")
    assert "@postgres:" in bridge["environment"]["BRIDGE_STORE__DSN"]
    assert ":" not in bridge["environment"]["BRIDGE_STORE__DSN"].split("//")[1].split("@")[0]
    assert bridge["read_only"] is True
    assert bridge["cap_drop"] == ["ALL"]


def test_bridge_reads_what_the_stand_ins_write():
    services = compose()["services"]
    sim, bridge = services["sim"], services["bridge"]
    env_file = bridge["command"][bridge["command"].index("--env-file") + 1]
    sim_mount = next(v for v in sim["volumes"] if v.startswith("sim-state:"))
    bridge_mount = next(v for v in bridge["volumes"] if v.startswith("sim-state:"))
    assert sim_mount.split(":")[1] == bridge_mount.split(":")[1]
    assert env_file.startswith(sim_mount.split(":")[1] + "/")
    sim_dockerfile = (ROOT / sim["build"]["dockerfile"]).read_text()
    assert f'"--env-file", "{env_file}"' in sim_dockerfile
    assert bridge["depends_on"]["sim"]["condition"] == "service_healthy"
    assert "HEALTHCHECK" in sim_dockerfile


def test_prometheus_scrapes_the_bridge_where_compose_publishes_it():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (target,) = config["scrape_configs"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    services = compose()["services"]
    assert services["bridge"]["network_mode"] == f"service:{host}"
    assert any(p.endswith(f":{port}") for p in services[host]["ports"])


def test_grafana_provisions_the_dashboard_and_datasource():
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in grafana["volumes"])
    dashboard_in_container = mounts["./grafana/iot-bridge.json"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "iot-bridge.yaml").read_text()
    )
    assert dashboard_in_container.startswith(provider["providers"][0]["options"]["path"] + "/")
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert datasources[0]["url"] == "http://prometheus:9090"
    assert json.loads((DEPLOY / "grafana" / "iot-bridge.json").read_text())["uid"] == "iot-bridge"


def test_nothing_secret_is_committed():
    text = COMPOSE.read_text().lower()
    for marker in ("password:", "sharedaccesskey=", "accountkey=", "begin private key"):
        assert marker not in text


def test_bridge_and_stand_ins_run_as_the_same_user():
    """`sim up` writes /sim/env and the keys mode 0600: the bridge reads them as that user."""
    users = set()
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "sim" / "Dockerfile"):
        lines = dockerfile.read_text().splitlines()
        users.add([line.split()[1] for line in lines if line.startswith("USER ")][-1])
    assert len(users) == 1, users
