#ifndef DEMO_CONFIG_H
#define DEMO_CONFIG_H

#define democonfigCLIENT_IDENTIFIER    "meter-0099"
#define democonfigCLIENT_USERNAME "myhub.azure-devices.net/" democonfigCLIENT_IDENTIFIER "/?api-version=2021-04-12"
#define democonfigMQTT_BROKER_ENDPOINT "myhub.azure-devices.net"
#define democonfigMQTT_BROKER_PORT     ( 8883 )
#define democonfigROOT_CA_PEM          "-----BEGIN CERTIFICATE-----\n...AmazonRootCA1...\n"
#define democonfigCLIENT_CERTIFICATE_PEM "meter-0099.crt"
#define mqttexampleKEEP_ALIVE_TIMEOUT_SECONDS ( 60U )
#define mqttexampleTOPIC               "devices/meter-0099/messages/events/awsTopic=dt%2Fmeters%2Fmeter-0099%2Fkwh&awsTopic1=dt&awsTopic2=meters&awsTopic3=meter-0099&awsTopic4=kwh"

#endif
