"""Cutover: waves of devices moved to IoT Hub through AWS IoT Jobs, judged on Azure."""
