"""The relay: AWS telemetry into IoT Hub, as each device's relay module, until cutover.

`engine` takes AWS deliveries, resolves each message's device from its topic
(`bridge.mapping.telemetry`), keeps one ordered lane per device and acknowledges a
message to AWS only once it is settled (IoT Hub accepted it, it was dead-lettered, or its
device is no longer relayed); `message` builds what IoT Hub receives; `service` runs it
as the daemon's second service with its own persistent AWS session.

Transport (issue 11; figures in the README): `BRIDGE_RELAY__TRANSPORT=amqp` (default)
sends through `bridge.azure.amqp_telemetry`, every relay module identity multiplexed on
AMQP 1.0 connections (a thousand each, one CBS token and one link per identity), as
Microsoft's C/.NET SDKs and protocol gateway do; `mqtt` keeps `bridge.azure.telemetry`,
one azure-iot-device MQTT connection per module identity in an LRU pool, which pays a TLS
handshake and a new-connection throttle token per pool miss and stalls past about 330
connections in one process. Both behind the engine's `Sender` seam.
"""
