#define SECRET_SSID "meter-net"
#define SECRET_PASS "v0lts-and-amps"
#define SECRET_BROKER "q7r8s9t0u1v2w3-ats.iot.eu-central-1.amazonaws.com"
#define SECRET_CERTIFICATE "-----BEGIN CERTIFICATE-----\nMIIBnano\n-----END CERTIFICATE-----\n"
