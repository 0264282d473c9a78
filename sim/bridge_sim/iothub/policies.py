"""Hub-level shared access policies, as IoT Hub creates them for a new hub."""

from __future__ import annotations

from dataclasses import dataclass

from bridge_sim.iothub.sas import generate_key

__all__ = ["BUILT_IN_POLICIES", "SharedAccessPolicy", "default_policies"]

# IoT Hub's built-in policies and the rights each grants.
BUILT_IN_POLICIES = {
    "iothubowner": frozenset({"RegistryRead", "RegistryWrite", "ServiceConnect", "DeviceConnect"}),
    "service": frozenset({"ServiceConnect"}),
    "device": frozenset({"DeviceConnect"}),
    "registryRead": frozenset({"RegistryRead"}),
    "registryReadWrite": frozenset({"RegistryRead", "RegistryWrite"}),
}


@dataclass(frozen=True)
class SharedAccessPolicy:
    """A hub-level shared access policy: name, two keys, and the rights it grants."""

    name: str
    primary_key: str
    secondary_key: str
    rights: frozenset[str]

    @property
    def keys(self) -> tuple[str, str]:
        return (self.primary_key, self.secondary_key)


def default_policies() -> dict[str, SharedAccessPolicy]:
    """The built-in policies with freshly generated keys."""
    return {
        name: SharedAccessPolicy(name, generate_key(), generate_key(), rights)
        for name, rights in BUILT_IN_POLICIES.items()
    }
