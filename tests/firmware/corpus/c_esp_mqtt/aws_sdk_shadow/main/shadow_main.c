/* Shadow sample from esp-aws-iot (AWS IoT Device SDK for Embedded C v3) on an ESP32. */
#include "aws_iot_config.h"
#include "aws_iot_mqtt_client_interface.h"
#include "aws_iot_shadow_interface.h"

static char HostAddress[255] = AWS_IOT_MQTT_HOST;

void aws_iot_task(void *param) {
    AWS_IoT_Client mqttClient;
    ShadowInitParameters_t sp = ShadowInitParametersDefault;
    sp.pHost = HostAddress;
    sp.port = AWS_IOT_MQTT_PORT;
    aws_iot_shadow_init(&mqttClient, &sp);
    ShadowConnectParameters_t scp = ShadowConnectParametersDefault;
    scp.pMyThingName = CONFIG_AWS_EXAMPLE_THING_NAME;
    scp.pMqttClientId = CONFIG_AWS_EXAMPLE_CLIENT_ID;
    aws_iot_shadow_connect(&mqttClient, &scp);
}
