/* Zephyr shadow client: reports firmware version to the classic shadow. */
#include <string.h>
#include <zephyr/net/mqtt.h>

#define THING "gateway-z-4"
#define SHADOW_UPDATE "$aws/things/" THING "/shadow/update"
#define AWS_HOST "myhub.azure-devices.net"

/* IoT Hub's MQTT user name; no password: the certificate authenticates. */
#define IOTHUB_USER "myhub.azure-devices.net/" THING "/?api-version=2021-04-12"
static struct mqtt_utf8 iothub_user_name = {
	.utf8 = (uint8_t *)IOTHUB_USER, .size = sizeof(IOTHUB_USER) - 1};

static struct mqtt_client c;

int shadow_connect(void)
{
	mqtt_client_init(&c);
	c.client_id.utf8 = (uint8_t *)THING;
	c.user_name = &iothub_user_name;
	c.client_id.size = strlen(THING);
	c.transport.tls.config.hostname = AWS_HOST;
	return mqtt_connect(&c);
}

int shadow_report(void)
{
	static const char doc[] = "{\"state\":{\"reported\":{\"fw\":\"2.1.0\"}}}";
	struct mqtt_publish_param param = {0};
	param.message.topic.topic.utf8 = (uint8_t *)SHADOW_UPDATE;
	param.message.topic.topic.size = strlen(SHADOW_UPDATE);
	param.message.payload.data = (uint8_t *)doc;
	param.message.payload.len = sizeof(doc) - 1;
	return mqtt_publish(&c, &param);
}
