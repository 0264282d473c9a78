WIFI_SSID = "greenhouse-net"
WIFI_PASS = "t0mat0es-and-basil"
