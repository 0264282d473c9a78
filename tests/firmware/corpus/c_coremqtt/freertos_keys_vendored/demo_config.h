#ifndef DEMO_CONFIG_H
#define DEMO_CONFIG_H

#include "aws_clientcredential_keys.h"

#define democonfigCLIENT_IDENTIFIER    "boiler-17"
#define democonfigMQTT_BROKER_ENDPOINT "n4o5p6q7r8s9t0-ats.iot.us-east-1.amazonaws.com"
#define democonfigMQTT_BROKER_PORT     ( 8883 )
#define democonfigCLIENT_PRIVATE_KEY_PEM keyCLIENT_PRIVATE_KEY_PEM
#define mqttexampleTOPIC               "boilers/boiler-17/pressure"

#endif
