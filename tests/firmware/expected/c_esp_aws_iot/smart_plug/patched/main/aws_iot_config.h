/* Settings of the AWS IoT Device SDK for Embedded C, as the esp-aws-iot port expects. */
#pragma once
#define AWS_IOT_MQTT_HOST "myhub.azure-devices.net"
#define AWS_IOT_MQTT_PORT 8883
#define AWS_IOT_MQTT_TX_BUF_LEN 512
#define AWS_IOT_MQTT_RX_BUF_LEN 512
#define AWS_IOT_MQTT_NUM_SUBSCRIBE_HANDLERS 5
