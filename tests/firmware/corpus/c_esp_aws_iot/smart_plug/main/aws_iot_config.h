/* Settings of the AWS IoT Device SDK for Embedded C, as the esp-aws-iot port expects. */
#pragma once
#define AWS_IOT_MQTT_HOST "d7e8f9g0h1i2j3-ats.iot.us-east-2.amazonaws.com"
#define AWS_IOT_MQTT_PORT 8883
#define AWS_IOT_MQTT_TX_BUF_LEN 512
#define AWS_IOT_MQTT_RX_BUF_LEN 512
#define AWS_IOT_MQTT_NUM_SUBSCRIBE_HANDLERS 5
