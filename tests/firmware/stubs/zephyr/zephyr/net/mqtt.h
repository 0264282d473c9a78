/* Zephyr's MQTT client API (the parts the corpus uses), recording calls on stdout so a
   test can read what a compiled program would send. */
#pragma once
#include <stdint.h>
#include <stdio.h>

struct mqtt_utf8 {
	uint8_t *utf8;
	uint32_t size;
};
enum { MQTT_QOS_0_AT_MOST_ONCE = 0, MQTT_QOS_1_AT_LEAST_ONCE = 1 };
enum { MQTT_TRANSPORT_NON_SECURE = 0, MQTT_TRANSPORT_SECURE = 1 };

struct mqtt_client {
	struct mqtt_utf8 client_id;
	struct mqtt_utf8 *user_name;
	struct mqtt_utf8 *password;
	uint16_t keepalive;
	void *broker;
	struct {
		int type;
		struct {
			struct {
				const char *hostname;
			} config;
		} tls;
	} transport;
};
struct mqtt_topic {
	struct mqtt_utf8 topic;
	uint8_t qos;
};
struct mqtt_subscription_list {
	struct mqtt_topic *list;
	uint16_t list_count;
	uint16_t message_id;
};
struct mqtt_publish_param {
	struct {
		struct mqtt_topic topic;
		struct {
			uint8_t *data;
			uint32_t len;
		} payload;
	} message;
	uint16_t message_id;
};

static inline void mqtt_client_init(struct mqtt_client *client) { (void)client; }
static inline int mqtt_connect(struct mqtt_client *c)
{
	printf("connect host=%s client_id=%.*s user=%.*s password=%s keepalive=%u\n",
	       c->transport.tls.config.hostname, (int)c->client_id.size,
	       (const char *)c->client_id.utf8, c->user_name ? (int)c->user_name->size : 6,
	       c->user_name ? (const char *)c->user_name->utf8 : "(none)",
	       c->password ? "set" : "(none)", c->keepalive);
	return 0;
}
static inline int mqtt_subscribe(struct mqtt_client *c, const struct mqtt_subscription_list *l)
{
	(void)c;
	printf("subscribe %.*s\n", (int)l->list[0].topic.size, (const char *)l->list[0].topic.utf8);
	return 0;
}
static inline int mqtt_publish(struct mqtt_client *c, const struct mqtt_publish_param *p)
{
	(void)c;
	printf("publish %.*s %.*s\n", (int)p->message.topic.topic.size,
	       (const char *)p->message.topic.topic.utf8, (int)p->message.payload.len,
	       (const char *)p->message.payload.data);
	return 0;
}
