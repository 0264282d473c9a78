#ifndef __AWS_CLIENTCREDENTIAL__H__
#define __AWS_CLIENTCREDENTIAL__H__

/* Filled in by the provisioning script from `aws iot describe-endpoint`. */
#define clientcredentialMQTT_BROKER_ENDPOINT "myhub.azure-devices.net"
#define clientcredentialIOT_THING_NAME       "cold-room-4"
#define democonfigIOTHUB_USERNAME "myhub.azure-devices.net/" clientcredentialIOT_THING_NAME "/?api-version=2021-04-12"
#define clientcredentialMQTT_BROKER_PORT     8883
#define sensorKEEP_ALIVE_SECONDS             ( 1177U )
#define sensorTELEMETRY_TOPIC                "devices/cold-room-4/messages/events/awsTopic=cold%2Fcold-room-4%2Ftemp&awsTopic1=cold&awsTopic2=cold-room-4&awsTopic3=temp"
#define sensorSHADOW_UPDATE_TOPIC            "$aws/things/" clientcredentialIOT_THING_NAME "/shadow/update"

#endif
