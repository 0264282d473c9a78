/* esp-mqtt's client API (ESP-IDF v5 layout, or v4 with -DESP_IDF_V4), recording calls on
   stdout so a test can read what a compiled program would send. */
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef const char *esp_event_base_t;
#define ESP_EVENT_ANY_ID (-1)
typedef enum { MQTT_EVENT_CONNECTED = 1, MQTT_EVENT_DISCONNECTED = 2, MQTT_EVENT_DATA = 6 } esp_mqtt_event_id_t;
typedef struct esp_mqtt_client *esp_mqtt_client_handle_t;
typedef struct {
    esp_mqtt_event_id_t event_id;
    esp_mqtt_client_handle_t client;
    const char *data;
    int data_len;
    const char *topic;
    int topic_len;
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
    const char *cert_pem;
    int keepalive;
    int disable_clean_session;
} esp_mqtt_client_config_t;
#define STUB_URI(c) (c)->uri
#define STUB_ID(c) (c)->client_id
#define STUB_USER(c) (c)->username
#define STUB_KEEPALIVE(c) (c)->keepalive
#define STUB_CA(c) (c)->cert_pem
#define STUB_CERT(c) (c)->client_cert_pem
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
    struct { int keepalive; int disable_clean_session; } session;
} esp_mqtt_client_config_t;
#define STUB_URI(c) (c)->broker.address.uri
#define STUB_ID(c) (c)->credentials.client_id
#define STUB_USER(c) (c)->credentials.username
#define STUB_KEEPALIVE(c) (c)->session.keepalive
#define STUB_CA(c) (c)->broker.verification.certificate
#define STUB_CERT(c) (c)->credentials.authentication.certificate
#endif

struct esp_mqtt_client { esp_event_handler_t handler; void *arg; };
static struct esp_mqtt_client stub_client;

static inline esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t *c) {
    printf("init uri=%s client_id=%s username=%s keepalive=%d\n", STUB_URI(c), STUB_ID(c),
           STUB_USER(c) ? STUB_USER(c) : "(none)", STUB_KEEPALIVE(c));
    if (STUB_CA(c) != NULL) {
        /* Which trust anchors the program configured, by their subject lines' names. */
        printf("trust digicert_g2=%d microsoft_rsa_2017=%d certificate=%s\n",
               strstr(STUB_CA(c), "MIIDjjCCAnagAwIBAgIQAzrx5qcRqaC7KGSxHQn65TANBgkqhkiG9w0BAQsFADBh") != NULL,
               strstr(STUB_CA(c), "MIIFqDCCA5CgAwIBAgIQHtOXCV/YtLNHcB6qvn9FszANBgkqhkiG9w0BAQwFADBl") != NULL,
               STUB_CERT(c) ? STUB_CERT(c) : "(none)");
    }
    return &stub_client;
}
static inline int esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, int id,
                                                 esp_event_handler_t handler, void *arg) {
    (void)id;
    client->handler = handler;
    client->arg = arg;
    return 0;
}
static inline int esp_mqtt_client_start(esp_mqtt_client_handle_t client) {
    esp_mqtt_event_t event = {MQTT_EVENT_CONNECTED, client, NULL, 0};
    client->handler(client->arg, "MQTT_EVENTS", MQTT_EVENT_CONNECTED, &event);
    return 0;
}
static inline int esp_mqtt_client_stop(esp_mqtt_client_handle_t client) {
    (void)client;
    printf("stop\n");
    return 0;
}
/* An inbound message, as esp-mqtt's task would hand it to the program's handler. */
static inline void stub_deliver(const char *topic, int topic_len, const char *data, int data_len) {
    esp_mqtt_event_t event = {MQTT_EVENT_DATA, &stub_client, data, data_len, topic, topic_len};
    stub_client.handler(stub_client.arg, "MQTT_EVENTS", MQTT_EVENT_DATA, &event);
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
