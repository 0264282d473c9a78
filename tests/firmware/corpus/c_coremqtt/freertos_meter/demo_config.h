#ifndef DEMO_CONFIG_H
#define DEMO_CONFIG_H

#define democonfigCLIENT_IDENTIFIER    "meter-0099"
#define democonfigMQTT_BROKER_ENDPOINT "i9j0k1l2m3n4o5-ats.iot.ap-northeast-1.amazonaws.com"
#define democonfigMQTT_BROKER_PORT     ( 8883 )
#define democonfigROOT_CA_PEM          "-----BEGIN CERTIFICATE-----\n...AmazonRootCA1...\n"
#define democonfigCLIENT_CERTIFICATE_PEM "meter-0099.crt"
#define mqttexampleKEEP_ALIVE_TIMEOUT_SECONDS ( 60U )
#define mqttexampleTOPIC               "dt/meters/" democonfigCLIENT_IDENTIFIER "/kwh"

#endif
