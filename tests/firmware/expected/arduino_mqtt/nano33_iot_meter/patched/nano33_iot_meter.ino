// Arduino Nano 33 IoT: ArduinoMqttClient with the ECC508 crypto chip, to AWS IoT.
#include <ArduinoBearSSL.h>
#include <ArduinoECCX08.h>
#include <ArduinoMqttClient.h>
#include <WiFiNINA.h>
#include "arduino_secrets.h"
// IoT Hub's MQTT user name.
#define IOTHUB_USER "myhub.azure-devices.net/nano-meter-5/?api-version=2021-04-12"

const char broker[] = SECRET_BROKER;
const char* certificate = SECRET_CERTIFICATE;

WiFiClient wifiClient;
BearSSLClient sslClient(wifiClient);
MqttClient mqttClient(sslClient);

void setup() {
  ECCX08.begin();
  sslClient.setEccSlot(0, certificate);
  mqttClient.setId("nano-meter-5");
  mqttClient.setUsernamePassword(IOTHUB_USER, "");  // no password: X.509
  mqttClient.setKeepAliveInterval(1177 * 1000L);
  mqttClient.connect(broker, 8883);
  mqttClient.beginMessage("devices/nano-meter-5/messages/events/awsTopic=meters%2Fnano-meter-5%2Fpower&awsTopic1=meters&awsTopic2=nano-meter-5&awsTopic3=power");
  mqttClient.print("{\"watts\":42}");
  mqttClient.endMessage();
}

void loop() { mqttClient.poll(); }
