// ESP8266 relay: switched by "cmd/relays/<name>" commands, reports its state.
#include <ESP8266WiFi.h>
#include <PubSubClient.h>
#include "config.h"
// IoT Hub's MQTT user name; no password: the certificate authenticates.
#define IOTHUB_USER "myhub.azure-devices.net/" DEVICE_NAME "/?api-version=2021-04-12"

#define CMD_TOPIC "devices/" DEVICE_NAME "/messages/devicebound/#"
#define STATE_TOPIC "devices/" DEVICE_NAME "/messages/events/awsTopic=relays%2F" DEVICE_NAME "%2Fstate&awsTopic1=relays&awsTopic2=" DEVICE_NAME "&awsTopic3=state"

BearSSL::WiFiClientSecure tls;
BearSSL::X509List trust(AMAZON_ROOT_CA1);
BearSSL::X509List cert(DEVICE_CERT);
BearSSL::PrivateKey key(DEVICE_KEY);
PubSubClient mqtt(tls);
bool relayOn = false;

void onMessage(char *topic, byte *payload, unsigned int length) {
  relayOn = length > 0 && payload[0] == '1';
  mqtt.publish(STATE_TOPIC, relayOn ? "{\"on\":true}" : "{\"on\":false}");
}

void setup() {
  WiFi.begin(WIFI_SSID, WIFI_PASS);
  tls.setTrustAnchors(&trust);
  tls.setClientRSACert(&cert, &key);
  mqtt.setServer(MQTT_HOST, 8883);
  mqtt.setBufferSize(1024);  // IoT Hub topics carry a property bag
  mqtt.setCallback(onMessage);
  if (mqtt.connect(DEVICE_NAME, IOTHUB_USER, NULL)) {
    mqtt.subscribe(CMD_TOPIC);
    mqtt.publish(STATE_TOPIC, "{\"on\":false}");
  }
}

void loop() { mqtt.loop(); }
