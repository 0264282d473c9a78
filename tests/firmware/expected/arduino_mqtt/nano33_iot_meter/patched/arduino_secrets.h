#define SECRET_SSID "meter-net"
#define SECRET_PASS "v0lts-and-amps"
#define SECRET_BROKER "myhub.azure-devices.net"
#define SECRET_CERTIFICATE "-----BEGIN CERTIFICATE-----\nMIIBnano\n-----END CERTIFICATE-----\n"
