"""`iot-bridge run`: the engine wired to AWS, Azure, the store, metrics and health checks."""
