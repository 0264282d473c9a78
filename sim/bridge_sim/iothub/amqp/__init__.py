"""The emulated IoT Hub's device-facing AMQP 1.0 endpoint: many identities per connection."""

from bridge_sim.iothub.amqp.endpoint import AMQPS_PORT, DeviceAmqpEndpoint
from bridge_sim.iothub.amqp.links import ENDPOINT_NAME

__all__ = ["AMQPS_PORT", "ENDPOINT_NAME", "DeviceAmqpEndpoint"]
