"""IoT Hub's built-in, Event Hubs-compatible endpoint: event storage and an AMQP 1.0 server."""

from bridge_sim.iothub.eventhub.log import EventLog, PartitionInfo, StoredEvent
from bridge_sim.iothub.eventhub.server import AmqpEndpoint

__all__ = ["AmqpEndpoint", "EventLog", "PartitionInfo", "StoredEvent"]
