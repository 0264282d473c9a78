/* Zephyr MQTT client publishing to AWS IoT (samples/net/cloud/aws_iot shape). */
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>

#define AWS_ENDPOINT "k1l2m3n4o5p6q7-ats.iot.us-east-1.amazonaws.com"
#define CLIENT_ID "zephyr-node-1"

static struct mqtt_client client;

int app_connect(void)
{
	mqtt_client_init(&client);
	client.client_id.utf8 = (uint8_t *)CLIENT_ID;
	client.client_id.size = sizeof(CLIENT_ID) - 1;
	client.keepalive = 60;
	client.transport.type = MQTT_TRANSPORT_SECURE;
	return mqtt_connect(&client);
}

int app_publish(const char *payload)
{
	struct mqtt_publish_param param = {0};
	param.message.topic.topic.utf8 = (uint8_t *)"zephyr/" CLIENT_ID "/data";
	param.message.payload.data = (uint8_t *)payload;
	return mqtt_publish(&client, &param);
}
