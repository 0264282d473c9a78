/* esp-mqtt's client API (ESP-IDF v5 layout, or v4 with -DESP_IDF_V4), recording calls on
   stdout so a test can read what a compiled program would send. */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef const char *esp_event_base_t;
#define ESP_EVENT_ANY_ID (-1)
typedef enum { MQTT_EVENT_CONNECTED = 1, MQTT_EVENT_DATA = 6 } esp_mqtt_event_id_t;
typedef struct esp_mqtt_client *esp_mqtt_client_handle_t;
typedef struct {
    esp_mqtt_event_id_t event_id;
    esp_mqtt_client_handle_t client;
    const char *data;
    int data_len;
} esp_mqtt_event_t;
typedef esp_mqtt_event_t *esp_mqtt_event_handle_t;
typedef void (*esp_event_handler_t)(void *, esp_event_base_t, int32_t, void *);

#ifdef ESP_IDF_V4
typedef struct {
    const char *uri;
    const char *client_id;
    const char *username;
    const char *client_cert_pem;
    const char *client_key_pem;
    int keepalive;
} esp_mqtt_client_config_t;
#define STUB_URI(c) (c)->uri
#define STUB_ID(c) (c)->client_id
#define STUB_USER(c) (c)->username
#define STUB_KEEPALIVE(c) (c)->keepalive
#else
typedef struct {
    struct {
        struct { const char *uri; } address;
        struct { const char *certificate; } verification;
    } broker;
    struct {
        const char *client_id;
        const char *username;
        struct { const char *certificate; const char *key; } authentication;
    } credentials;
    struct { int keepalive; } session;
} esp_mqtt_client_config_t;
#define STUB_URI(c) (c)->broker.address.uri
#define STUB_ID(c) (c)->credentials.client_id
#define STUB_USER(c) (c)->credentials.username
#define STUB_KEEPALIVE(c) (c)->session.keepalive
#endif

struct esp_mqtt_client { esp_event_handler_t handler; };
static struct esp_mqtt_client stub_client;

static inline esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t *c) {
    printf("init uri=%s client_id=%s username=%s keepalive=%d\n", STUB_URI(c), STUB_ID(c),
           STUB_USER(c) ? STUB_USER(c) : "(none)", STUB_KEEPALIVE(c));
    return &stub_client;
}
static inline int esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, int id,
                                                 esp_event_handler_t handler, void *arg) {
    (void)id; (void)arg;
    client->handler = handler;
    return 0;
}
static inline int esp_mqtt_client_start(esp_mqtt_client_handle_t client) {
    esp_mqtt_event_t event = {MQTT_EVENT_CONNECTED, client, NULL, 0};
    client->handler(NULL, "MQTT_EVENTS", MQTT_EVENT_CONNECTED, &event);
    return 0;
}
static inline int esp_mqtt_client_subscribe(esp_mqtt_client_handle_t client, const char *topic, int qos) {
    (void)client;
    printf("subscribe %s %d\n", topic, qos);
    return 1;
}
static inline int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char *topic,
                                          const char *data, int len, int qos, int retain) {
    (void)client; (void)len; (void)retain;
    printf("publish %s %s %d\n", topic, data, qos);
    return 1;
}
