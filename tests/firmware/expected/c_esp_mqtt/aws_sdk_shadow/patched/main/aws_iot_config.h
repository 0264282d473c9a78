#define AWS_IOT_MQTT_HOST "myhub.azure-devices.net"
#define AWS_IOT_MQTT_PORT 8883
