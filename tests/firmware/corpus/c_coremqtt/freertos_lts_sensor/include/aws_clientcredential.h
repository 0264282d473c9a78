#ifndef __AWS_CLIENTCREDENTIAL__H__
#define __AWS_CLIENTCREDENTIAL__H__

/* Filled in by the provisioning script from `aws iot describe-endpoint`. */
#define clientcredentialMQTT_BROKER_ENDPOINT "m3n4o5p6q7r8s9-ats.iot.eu-west-3.amazonaws.com"
#define clientcredentialIOT_THING_NAME       "cold-room-4"
#define clientcredentialMQTT_BROKER_PORT     8883
#define sensorKEEP_ALIVE_SECONDS             ( 1200U )
#define sensorTELEMETRY_TOPIC                "cold/" clientcredentialIOT_THING_NAME "/temp"
#define sensorSHADOW_UPDATE_TOPIC            "$aws/things/" clientcredentialIOT_THING_NAME "/shadow/update"

#endif
