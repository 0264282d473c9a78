"""The emulated IoT Hub's device endpoint: MQTT 3.1.1 over TLS for the device SDKs."""

from bridge_sim.iothub.mqtt.endpoint import DeviceEndpoint
from bridge_sim.iothub.mqtt.loopback import MQTT_PORT, free_loopback_host, privileged_port_or_none
from bridge_sim.iothub.mqtt.state import ENDPOINT_NAME, Limits

__all__ = [
    "ENDPOINT_NAME",
    "MQTT_PORT",
    "DeviceEndpoint",
    "Limits",
    "free_loopback_host",
    "privileged_port_or_none",
]
