// Arduino Nano 33 IoT: ArduinoMqttClient with the ECC508 crypto chip, to AWS IoT.
#include <ArduinoBearSSL.h>
#include <ArduinoECCX08.h>
#include <ArduinoMqttClient.h>
#include <WiFiNINA.h>
#include "arduino_secrets.h"

const char broker[] = SECRET_BROKER;
const char* certificate = SECRET_CERTIFICATE;

WiFiClient wifiClient;
BearSSLClient sslClient(wifiClient);
MqttClient mqttClient(sslClient);

void setup() {
  ECCX08.begin();
  sslClient.setEccSlot(0, certificate);
  mqttClient.setId("nano-meter-5");
  mqttClient.setKeepAliveInterval(1800 * 1000L);
  mqttClient.connect(broker, 8883);
  mqttClient.beginMessage("meters/nano-meter-5/power");
  mqttClient.print("{\"watts\":42}");
  mqttClient.endMessage();
}

void loop() { mqttClient.poll(); }
