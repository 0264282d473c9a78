# Board settings, edited per device before flashing.
ENDPOINT = "myhub.azure-devices.net"
THING_NAME = "sensor-0001"
WIFI_SSID = "plant-floor"
WIFI_PASSWORD = "Corr3ct-H0rse-Battery"
READINGS = 3
