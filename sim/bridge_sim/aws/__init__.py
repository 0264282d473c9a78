"""AWS IoT Core stand-in: moto for the control plane, mosquitto for MQTT, glue for the rest."""
