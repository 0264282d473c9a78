#include <pgmspace.h>

#define THINGNAME "greenhouse-esp32-6"

const char WIFI_SSID[] = "greenhouse";
const char WIFI_PASSWORD[] = "c4rrots-and-l33ks";
const char AWS_IOT_ENDPOINT[] = "myhub.azure-devices.net";

static const char AWS_CERT_CA[] PROGMEM = "-----BEGIN CERTIFICATE-----\nAmazonRootCA1\n-----END CERTIFICATE-----\n";
static const char AWS_CERT_CRT[] PROGMEM = "-----BEGIN CERTIFICATE-----\nMIIDWTCCAkGg\n-----END CERTIFICATE-----\n";
static const char AWS_CERT_PRIVATE[] PROGMEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowgreenhouseFAKEkeyFORcorpus\n-----END RSA PRIVATE KEY-----\n";
