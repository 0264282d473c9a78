/* Boiler monitor on ESP-IDF v4.4: esp-mqtt with the v4 flat configuration. */
#include "esp_log.h"
#include "mqtt_client.h"

#define BOILER_ID "boiler-esp-1"

extern const char device_crt[] asm("_binary_device_crt_start");
extern const char device_key[] asm("_binary_device_key_start");

static esp_mqtt_client_handle_t client;

static void on_event(void *args, esp_event_base_t base, int32_t id, void *data) {
    esp_mqtt_event_handle_t event = data;
    if (event->event_id == MQTT_EVENT_CONNECTED) {
        esp_mqtt_client_subscribe(client, "cmd/boilers/" BOILER_ID "/setpoint", 1);
        esp_mqtt_client_publish(client, "boilers/" BOILER_ID "/pressure", "{\"bar\":1.6}", 0, 1, 0);
    } else if (event->event_id == MQTT_EVENT_DATA) {
        ESP_LOGI("boiler", "setpoint %.*s", event->data_len, event->data);
    }
}

void app_main(void) {
    esp_mqtt_client_config_t config = {
        .uri = "mqtts://r8s9t0u1v2w3x4-ats.iot.eu-west-1.amazonaws.com:8883",
        .client_id = BOILER_ID,
        .client_cert_pem = device_crt,
        .client_key_pem = device_key,
        .keepalive = 60,
    };
    client = esp_mqtt_client_init(&config);
    esp_mqtt_client_register_event(client, ESP_EVENT_ANY_ID, on_event, NULL);
    esp_mqtt_client_start(client);
}
