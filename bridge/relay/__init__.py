"""The relay: AWS telemetry into IoT Hub, as each device's relay module, until cutover.

`engine` takes AWS deliveries, resolves each message's device from its topic
(`bridge.mapping.telemetry`), keeps one ordered lane per device and acknowledges a
message to AWS only once it is settled (IoT Hub accepted it, it was dead-lettered, or its
device is no longer relayed); `message` builds what IoT Hub receives; `service` runs it
as the daemon's second service with its own persistent AWS session.

Transport decision (issue 11): TO BE MEASURED.
"""
