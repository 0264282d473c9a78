#define AWS_IOT_MQTT_HOST "s9t0u1v2w3x4y5-ats.iot.us-west-2.amazonaws.com"
#define AWS_IOT_MQTT_PORT 8883
