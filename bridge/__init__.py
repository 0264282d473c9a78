"""iot-bridge: live migration of an AWS IoT Core fleet to Azure IoT Hub."""

__version__ = "0.1.0"
__all__ = ["__version__"]
