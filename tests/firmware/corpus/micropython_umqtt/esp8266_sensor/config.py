# Board settings, edited per device before flashing.
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
THING_NAME = "sensor-0001"
WIFI_SSID = "plant-floor"
WIFI_PASSWORD = "Corr3ct-H0rse-Battery"
READINGS = 3
