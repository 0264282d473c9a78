/* Pump controller on ESP-IDF: esp-mqtt over mutual TLS to AWS IoT. */
#include "esp_log.h"
#include "mqtt_client.h"

extern const uint8_t client_cert_pem_start[] asm("_binary_client_crt_start");
extern const uint8_t client_key_pem_start[] asm("_binary_client_key_start");
extern const uint8_t aws_root_ca_pem_start[] asm("_binary_aws_root_ca_pem_start");

static void mqtt_event_handler(void *args, esp_event_base_t base, int32_t id, void *data) {
    esp_mqtt_event_handle_t event = data;
    if (event->event_id == MQTT_EVENT_CONNECTED) {
        esp_mqtt_client_subscribe(event->client, "$iothub/twin/PATCH/properties/desired/#", 1);
        esp_mqtt_client_publish(event->client, "devices/" CONFIG_THING_NAME "/messages/events/awsTopic=dt%2Fpumps%2F" CONFIG_THING_NAME "%2Fflow&awsTopic1=dt&awsTopic2=pumps&awsTopic3=" CONFIG_THING_NAME "&awsTopic4=flow", "{\"lpm\":12}", 0, 1, 0);
    }
}

void app_main(void) {
    const esp_mqtt_client_config_t mqtt_cfg = {
        .broker.address.uri = "mqtts://" CONFIG_AWS_IOT_ENDPOINT ":8883",
        .broker.verification.certificate = (const char *)aws_root_ca_pem_start,
        .credentials.client_id = CONFIG_THING_NAME,
        .credentials.username = "myhub.azure-devices.net/" CONFIG_THING_NAME "/?api-version=2021-04-12",
        .credentials.authentication.certificate = (const char *)client_cert_pem_start,
        .credentials.authentication.key = (const char *)client_key_pem_start,
        .session.keepalive = 1177,
    };
    esp_mqtt_client_handle_t client = esp_mqtt_client_init(&mqtt_cfg);
    esp_mqtt_client_register_event(client, ESP_EVENT_ANY_ID, mqtt_event_handler, NULL);
    esp_mqtt_client_start(client);
}
