#ifndef DEMO_CONFIG_H
#define DEMO_CONFIG_H

#include "aws_clientcredential_keys.h"

#define democonfigCLIENT_IDENTIFIER    "boiler-17"
#define democonfigIOTHUB_USERNAME "myhub.azure-devices.net/" democonfigCLIENT_IDENTIFIER "/?api-version=2021-04-12"
#define democonfigMQTT_BROKER_ENDPOINT "myhub.azure-devices.net"
#define democonfigMQTT_BROKER_PORT     ( 8883 )
#define democonfigCLIENT_PRIVATE_KEY_PEM keyCLIENT_PRIVATE_KEY_PEM
#define mqttexampleTOPIC               "devices/boiler-17/messages/events/awsTopic=boilers%2Fboiler-17%2Fpressure&awsTopic1=boilers&awsTopic2=boiler-17&awsTopic3=pressure"

#endif
