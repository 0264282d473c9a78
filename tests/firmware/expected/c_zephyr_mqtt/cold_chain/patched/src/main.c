/* Cold-chain logger: Zephyr MQTT, endpoint and thing name from Kconfig (prj.conf). */
#include <string.h>
#include <zephyr/net/mqtt.h>

#define TEMP_TOPIC "devices/" CONFIG_THING_NAME "/messages/events/awsTopic=coldchain%2F" CONFIG_THING_NAME "%2Ftemp&awsTopic1=coldchain&awsTopic2=" CONFIG_THING_NAME "&awsTopic3=temp"

/* IoT Hub's MQTT user name; no password: the certificate authenticates. */
#define IOTHUB_USER "myhub.azure-devices.net/" CONFIG_THING_NAME "/?api-version=2021-04-12"
static struct mqtt_utf8 iothub_user_name = {
	.utf8 = (uint8_t *)IOTHUB_USER, .size = sizeof(IOTHUB_USER) - 1};

static struct mqtt_client mqtt;

int logger_connect(void)
{
	mqtt_client_init(&mqtt);
	mqtt.client_id.utf8 = (uint8_t *)CONFIG_THING_NAME;
	mqtt.user_name = &iothub_user_name;
	mqtt.client_id.size = sizeof(CONFIG_THING_NAME) - 1;
	mqtt.keepalive = 300;
	mqtt.transport.type = MQTT_TRANSPORT_SECURE;
	mqtt.transport.tls.config.hostname = CONFIG_AWS_IOT_ENDPOINT;
	return mqtt_connect(&mqtt);
}

int logger_publish(const char *json)
{
	struct mqtt_publish_param param = {0};
	param.message.topic.topic.utf8 = (uint8_t *)TEMP_TOPIC;
	param.message.topic.topic.size = sizeof(TEMP_TOPIC) - 1;
	param.message.payload.data = (uint8_t *)json;
	param.message.payload.len = strlen(json);
	return mqtt_publish(&mqtt, &param);
}
