#pragma once

#define DEVICE_NAME "relay-8266-2"
#define MQTT_HOST "p6q7r8s9t0u1v2-ats.iot.us-east-2.amazonaws.com"
#define WIFI_SSID "barn"
#define WIFI_PASS "h4y-b4les-2019"

static const char AMAZON_ROOT_CA1[] PROGMEM = "-----BEGIN CERTIFICATE-----\nMIIDQTCCAimg\n-----END CERTIFICATE-----\n";
static const char DEVICE_CERT[] PROGMEM = "-----BEGIN CERTIFICATE-----\nMIIDWTCCAkGg\n-----END CERTIFICATE-----\n";
static const char DEVICE_KEY[] PROGMEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAr3lAYbarnKEYfakeFORtheCORPUSonly\n-----END RSA PRIVATE KEY-----\n";
