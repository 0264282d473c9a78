/* nRF9160 asset tracker on Zephyr's MQTT client, TLS to AWS IoT (aws_iot sample shape). */
#include <string.h>
#include <zephyr/net/mqtt.h>
#include <zephyr/net/socket.h>

#define AWS_ENDPOINT "myhub.azure-devices.net"
#define CLIENT_ID "tracker-nrf-7"
#define LOCATION_TOPIC "devices/" CLIENT_ID "/messages/events/awsTopic=trackers%2F" CLIENT_ID "%2Flocation&awsTopic1=trackers&awsTopic2=" CLIENT_ID "&awsTopic3=location"
#define CMD_TOPIC "devices/" CLIENT_ID "/messages/devicebound/#"

/* IoT Hub's MQTT user name; no password: the certificate authenticates. */
#define IOTHUB_USER "myhub.azure-devices.net/" CLIENT_ID "/?api-version=2021-04-12"
static struct mqtt_utf8 iothub_user_name = {
	.utf8 = (uint8_t *)IOTHUB_USER, .size = sizeof(IOTHUB_USER) - 1};

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
	client.user_name = &iothub_user_name;
	client.keepalive = 1177;
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
