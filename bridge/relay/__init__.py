"""The relay: AWS telemetry into IoT Hub, as each device's relay module, until cutover.

`engine` takes AWS deliveries, resolves each message's device from its topic
(`bridge.mapping.telemetry`), keeps one ordered lane per device and acknowledges a
message to AWS only once it is settled (IoT Hub accepted it, it was dead-lettered, or its
device is no longer relayed); `message` builds what IoT Hub receives; `service` runs it
as the daemon's second service with its own persistent AWS session.

Transport decision (issue 11), from `bench/relay.py` on two shared cores: one
azure-iot-device MQTT connection per module identity, pooled, relays 35 to 63 messages/s
at about 9 ms CPU each with 1,000 devices and a pool of 64 (a new connection per message),
and about 900 messages/s at about 1 ms CPU each with every connection warm (100 devices);
mosquitto's own bridge costs 0.014 ms CPU per message. azure-iot-device stalls at about
330 open connections in one process. So one connection per identity cannot carry 100,000
devices (100,000 TLS connections, IoT Hub's new-connection throttle on every pool miss);
the target is AMQP 1.0 with python-qpid-proton, one connection carrying one link and one
CBS token per identity, behind the same `Sender` seam. Not built yet: that sender and the
emulator's device-facing AMQP endpoint it needs.
"""
