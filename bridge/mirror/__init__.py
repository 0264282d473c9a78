"""The mirror: every AWS thing and shadow kept in an IoT Hub identity and twin, live.

`engine` wires the ingest (source deliveries and control-plane reads folded into stored
views), the workers (views applied to the target, one device at a time) and
anti-entropy together; `service` runs them as a service of the daemon with the AWS source
and the IoT Hub target. Only `service` knows the clouds.
"""
