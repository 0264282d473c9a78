/* Vendored coreMQTT configuration shipped with the AWS FreeRTOS reference integration. */
#define MQTT_STATE_ARRAY_MAX_COUNT 10U
#define democonfigMQTT_BROKER_ENDPOINT_DEFAULT "example-ats.iot.us-east-1.amazonaws.com"
