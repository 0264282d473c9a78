/* Cold-chain logger: Zephyr MQTT, endpoint and thing name from Kconfig (prj.conf). */
#include <string.h>
#include <zephyr/net/mqtt.h>

#define TEMP_TOPIC "coldchain/" CONFIG_THING_NAME "/temp"

static struct mqtt_client mqtt;

int logger_connect(void)
{
	mqtt_client_init(&mqtt);
	mqtt.client_id.utf8 = (uint8_t *)CONFIG_THING_NAME;
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
