"""The stand-in's control plane alone (moto and its glue, no broker), for tests and benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bridge_sim.aws.certs import CertificateRegistry
from bridge_sim.aws.event_config import REGISTRY_EVENT_TYPES, EventConfigurations
from bridge_sim.aws.indexing import FleetIndex
from bridge_sim.aws.moto_server import MotoServer
from bridge_sim.aws.registry_events import RegistryEvents
from bridge_sim.aws.shadows import ShadowService
from bridge_sim.aws.things import ThingRules
from bridge_sim.pki import CertificateAuthority

__all__ = ["ControlPlane", "control_plane"]

Publish = Callable[[str, bytes], None]


@dataclass
class ControlPlane:
    """moto with the stand-in's registry rules, events, shadows, certificates and index."""

    moto: MotoServer
    shadows: ShadowService
    certificates: CertificateRegistry
    index: FleetIndex


@contextlib.contextmanager
def control_plane(
    region: str = "us-east-1", *, publish: Publish | None = None, registry_events: bool = True
) -> Iterator[ControlPlane]:
    """Start moto with the glue installed; `publish` receives what would go to MQTT."""
    events = EventConfigurations(REGISTRY_EVENT_TYPES if registry_events else ())
    sink: Publish = events.gate(publish or (lambda _topic, _payload: None))
    moto = MotoServer(region=region)
    moto.start()
    events.install()
    rules = ThingRules(moto=moto)
    rules.install()
    RegistryEvents(moto=moto, publish=sink).install()
    shadows = ShadowService(moto=moto, publish=sink)
    shadows.install()
    index = FleetIndex(moto=moto, shadows=shadows)
    index.install()
    certs = CertificateRegistry(
        moto=moto,
        device_ca=CertificateAuthority.create("Stand-in AWS IoT device CA"),
        apply=None,  # no broker: nobody needs the principal table
    )
    certs.install()
    try:
        yield ControlPlane(moto, shadows, certs, index)
    finally:
        index.uninstall()
        events.uninstall()
        certs.uninstall()
        rules.uninstall()
        moto.stop()
