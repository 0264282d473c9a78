"""The reverse path: a cut-over device's Azure state and telemetry back to AWS.

`engine` reads IoT Hub's Event Hubs-compatible endpoint in batches (through
`bridge.azure.events`) and settles each: the device's own telemetry republished on its old
AWS topic (`telemetry` says which), its twin changes written to its AWS shadows (`twins`,
with the echo rules between this direction and the mirror's); `service` runs it as a
daemon service with its own MQTT client id (`<mirror client id>-reverse`).
"""
