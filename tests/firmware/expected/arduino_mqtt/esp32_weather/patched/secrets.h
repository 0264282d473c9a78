#include <pgmspace.h>

#define SECRET
#define THINGNAME "weather-station-12"

const char WIFI_SSID[] = "allotment";
const char WIFI_PASSWORD[] = "r4dish-and-b33t";
const char AWS_IOT_ENDPOINT[] = "myhub.azure-devices.net";

// Amazon Root CA 1
static const char AWS_CERT_CA[] PROGMEM = R"EOF(
-----BEGIN CERTIFICATE-----
MIIDQTCCAimgAwIBAgITBmyfz5m/jAo54vB4ikPmljZbyjANBgkqhkiG9w0BAQsF
-----END CERTIFICATE-----
)EOF";

// Device Certificate
static const char AWS_CERT_CRT[] PROGMEM = R"KEY(
-----BEGIN CERTIFICATE-----
MIIDWTCCAkGgAwIBAgIUweatherSTATIONcertificateFORcorpus
-----END CERTIFICATE-----
)KEY";

// Device Private Key
static const char AWS_CERT_PRIVATE[] PROGMEM = R"KEY(
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAzGz1TEST0NLYxKEYxNOTxREALxKEYxFORxTHExCORPUSxxxx
-----END RSA PRIVATE KEY-----
)KEY";
