"""`iot-bridge discover`: read an AWS IoT estate into an inventory."""

from bridge.discover.crawler import DiscoveryOptions, discover

__all__ = ["DiscoveryOptions", "discover"]
