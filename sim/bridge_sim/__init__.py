"""Local stand-ins for AWS IoT Core and Azure IoT Hub, for tests and rehearsals."""
