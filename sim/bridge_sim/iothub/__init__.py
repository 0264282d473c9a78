"""A local stand-in for Azure IoT Hub that Microsoft's unmodified SDKs can talk to.

Shared state: `registry` (identities, twins, policies; the device endpoint's API is in its
docstring), `quotas` (tier throttles), `faults` (fault switches and request counts),
`sas` (tokens). Service REST API: `service.ServiceApi` serves `rest.create_app` over HTTPS;
routes live in `rest_identities`, `rest_twins` and `rest_control` (`/_emulator/`). The
Event Hubs-compatible endpoint is in `eventhub` (it also serves custom Event Hubs), message
routing (route conditions, custom endpoints, the fallback route) in `routing`.
"""
