// ESP8266 relay: switched by "cmd/relays/<name>" commands, reports its state.
#include <ESP8266WiFi.h>
#include <PubSubClient.h>
#include "config.h"

#define CMD_TOPIC "cmd/relays/" DEVICE_NAME
#define STATE_TOPIC "relays/" DEVICE_NAME "/state"

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
  mqtt.setCallback(onMessage);
  if (mqtt.connect(DEVICE_NAME)) {
    mqtt.subscribe(CMD_TOPIC);
    mqtt.publish(STATE_TOPIC, "{\"on\":false}");
  }
}

void loop() { mqtt.loop(); }
