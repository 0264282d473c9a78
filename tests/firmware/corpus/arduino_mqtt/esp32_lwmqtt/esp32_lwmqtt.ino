// The "ESP32 to AWS IoT" tutorial sketch (256dpi arduino-mqtt), as the greenhouse team runs it.
#include "secrets.h"
#include <WiFiClientSecure.h>
#include <MQTTClient.h>
#include <ArduinoJson.h>

#define AWS_IOT_PUBLISH_TOPIC   "esp32/pub"
#define AWS_IOT_SUBSCRIBE_TOPIC "esp32/sub"

WiFiClientSecure net = WiFiClientSecure();
MQTTClient client = MQTTClient(256);

void messageHandler(String &topic, String &payload) {
  client.publish(AWS_IOT_PUBLISH_TOPIC, "{\"ack\":\"" + payload + "\"}");
}

void connectAWS() {
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);
  client.begin(AWS_IOT_ENDPOINT, 8883, net);
  client.onMessage(messageHandler);
  while (!client.connect(THINGNAME)) {
    delay(100);
  }
  client.subscribe(AWS_IOT_SUBSCRIBE_TOPIC);
}

void setup() {
  connectAWS();
  client.publish(AWS_IOT_PUBLISH_TOPIC, "{\"humidity\":58}");
}

void loop() { client.loop(); }
