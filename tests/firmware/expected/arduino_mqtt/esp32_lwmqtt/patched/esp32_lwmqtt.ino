// The "ESP32 to AWS IoT" tutorial sketch (256dpi arduino-mqtt), as the greenhouse team runs it.
#include "secrets.h"
#include <WiFiClientSecure.h>
#include <MQTTClient.h>
#include <ArduinoJson.h>
// IoT Hub's MQTT user name; no password: the certificate authenticates.
#define IOTHUB_USER "myhub.azure-devices.net/" THINGNAME "/?api-version=2021-04-12"

#define AWS_IOT_PUBLISH_TOPIC   "devices/" THINGNAME "/messages/events/awsTopic=esp32%2Fpub&awsTopic1=esp32&awsTopic2=pub"
#define AWS_IOT_SUBSCRIBE_TOPIC "devices/" THINGNAME "/messages/devicebound/#"

WiFiClientSecure net = WiFiClientSecure();
MQTTClient client = MQTTClient(1024);

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
  while (!client.connect(THINGNAME, IOTHUB_USER, NULL)) {
    delay(100);
  }
  client.subscribe(AWS_IOT_SUBSCRIBE_TOPIC);
}

void setup() {
  connectAWS();
  client.publish(AWS_IOT_PUBLISH_TOPIC, "{\"humidity\":58}");
}

void loop() { client.loop(); }
