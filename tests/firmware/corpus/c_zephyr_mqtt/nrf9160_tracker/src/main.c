/* nRF9160 asset tracker on Zephyr's MQTT client, TLS to AWS IoT (aws_iot sample shape). */
#include <string.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>

#define AWS_ENDPOINT "t0u1v2w3x4y5z6-ats.iot.eu-west-1.amazonaws.com"
#define CLIENT_ID "tracker-nrf-7"
#define LOCATION_TOPIC "trackers/" CLIENT_ID "/location"
#define CMD_TOPIC "cmd/trackers/" CLIENT_ID

static struct mqtt_client client;
static struct sockaddr_storage broker;

int app_connect(void)
{
	struct zsock_addrinfo *result;
	zsock_getaddrinfo(AWS_ENDPOINT, "8883", NULL, &result);
	mqtt_client_init(&client);
	client.broker = &broker;
	client.client_id.utf8 = (uint8_t *)CLIENT_ID;
	client.client_id.size = strlen(CLIENT_ID);
	client.password = NULL;
	client.user_name = NULL;
	client.keepalive = 1200;
	client.transport.type = MQTT_TRANSPORT_SECURE;
	client.transport.tls.config.hostname = AWS_ENDPOINT;
	return mqtt_connect(&client);
}

int app_subscribe(void)
{
	struct mqtt_topic topic = {
		.topic = {.utf8 = (uint8_t *)CMD_TOPIC, .size = strlen(CMD_TOPIC)},
		.qos = MQTT_QOS_1_AT_LEAST_ONCE,
	};
	struct mqtt_subscription_list list = {.list = &topic, .list_count = 1, .message_id = 1};
	return mqtt_subscribe(&client, &list);
}

int app_publish(const char *json)
{
	struct mqtt_publish_param param = {0};
	param.message.topic.qos = MQTT_QOS_1_AT_LEAST_ONCE;
	param.message.topic.topic.utf8 = (uint8_t *)LOCATION_TOPIC;
	param.message.topic.topic.size = strlen(LOCATION_TOPIC);
	param.message.payload.data = (uint8_t *)json;
	param.message.payload.len = strlen(json);
	param.message_id = 1;
	return mqtt_publish(&client, &param);
}
