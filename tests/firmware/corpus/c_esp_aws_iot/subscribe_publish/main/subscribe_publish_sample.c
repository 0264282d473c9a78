/* Soil-moisture probe on an ESP32, from esp-aws-iot's subscribe_publish sample:
 * readings every few seconds, a command topic for the sampling interval. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "esp_log.h"

#include "aws_iot_config.h"
#include "aws_iot_log.h"
#include "aws_iot_version.h"
#include "aws_iot_mqtt_client_interface.h"

static const char *TAG = "moisture";

extern const uint8_t aws_root_ca_pem_start[] asm("_binary_aws_root_ca_pem_start");
extern const uint8_t certificate_pem_crt_start[] asm("_binary_certificate_pem_crt_start");
extern const uint8_t private_pem_key_start[] asm("_binary_private_pem_key_start");

char HostAddress[255] = AWS_IOT_MQTT_HOST;
uint32_t port = AWS_IOT_MQTT_PORT;
static int interval_ms = 1000;

static void command_handler(AWS_IoT_Client *pClient, char *topicName, uint16_t topicNameLen,
                            IoT_Publish_Message_Params *params, void *pData) {
    /* {"interval_ms": N} from the farm app */
    const char *value = strstr((const char *)params->payload, "\"interval_ms\":");
    if (value != NULL) {
        interval_ms = atoi(value + 14);
    }
    ESP_LOGI(TAG, "command on %.*s: interval %d", topicNameLen, topicName, interval_ms);
}

static void disconnect_handler(AWS_IoT_Client *pClient, void *data) {
    ESP_LOGI(TAG, "MQTT Disconnect");
}

void aws_iot_task(void *param) {
    char cPayload[100];
    int32_t i = 0;
    IoT_Error_t rc = FAILURE;
    AWS_IoT_Client client;
    IoT_Client_Init_Params mqttInitParams = iotClientInitParamsDefault;
    IoT_Client_Connect_Params connectParams = iotClientConnectParamsDefault;
    IoT_Publish_Message_Params paramsQOS1;

    mqttInitParams.enableAutoReconnect = false;
    mqttInitParams.pHostURL = HostAddress;
    mqttInitParams.port = port;
    mqttInitParams.pRootCALocation = (const char *)aws_root_ca_pem_start;
    mqttInitParams.pDeviceCertLocation = (const char *)certificate_pem_crt_start;
    mqttInitParams.pDevicePrivateKeyLocation = (const char *)private_pem_key_start;
    mqttInitParams.mqttCommandTimeout_ms = 20000;
    mqttInitParams.tlsHandshakeTimeout_ms = 5000;
    mqttInitParams.isSSLHostnameVerify = true;
    mqttInitParams.disconnectHandler = disconnect_handler;
    mqttInitParams.disconnectHandlerData = NULL;

    rc = aws_iot_mqtt_init(&client, &mqttInitParams);
    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "aws_iot_mqtt_init returned error : %d ", rc);
        abort();
    }

    connectParams.keepAliveIntervalInSec = 10;
    connectParams.isCleanSession = true;
    connectParams.MQTTVersion = MQTTv311;
    connectParams.pClientID = CONFIG_AWS_EXAMPLE_CLIENT_ID;
    connectParams.clientIDLen = (uint16_t) strlen(CONFIG_AWS_EXAMPLE_CLIENT_ID);
    connectParams.isWillMsgPresent = false;

    ESP_LOGI(TAG, "Connecting to AWS...");
    do {
        rc = aws_iot_mqtt_connect(&client, &connectParams);
        if (SUCCESS != rc) {
            ESP_LOGI(TAG, "Error(%d) connecting to %s:%d", rc, mqttInitParams.pHostURL, mqttInitParams.port);
            vTaskDelay(1000 / portTICK_PERIOD_MS);
        }
    } while (SUCCESS != rc);

    rc = aws_iot_mqtt_autoreconnect_set_status(&client, true);

    const char *TOPIC = "cmd/probes/" CONFIG_AWS_EXAMPLE_CLIENT_ID "/interval";
    const int TOPIC_LEN = strlen(TOPIC);
    rc = aws_iot_mqtt_subscribe(&client, TOPIC, TOPIC_LEN, QOS1, command_handler, NULL);
    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "Error subscribing : %d ", rc);
        abort();
    }

    const char *TELEMETRY = "dt/probes/" CONFIG_AWS_EXAMPLE_CLIENT_ID "/moisture";
    paramsQOS1.qos = QOS1;
    paramsQOS1.payload = (void *) cPayload;
    paramsQOS1.isRetained = 0;

    while ((NETWORK_ATTEMPTING_RECONNECT == rc || NETWORK_RECONNECTED == rc || SUCCESS == rc)) {
        rc = aws_iot_mqtt_yield(&client, 100);
        if (NETWORK_ATTEMPTING_RECONNECT == rc) {
            continue;
        }
        vTaskDelay(interval_ms / portTICK_PERIOD_MS);
        sprintf(cPayload, "{\"seq\":%d,\"moisture\":%d,\"interval_ms\":%d}", (int)i++, 412, interval_ms);
        paramsQOS1.payloadLen = strlen(cPayload);
        rc = aws_iot_mqtt_publish(&client, TELEMETRY, strlen(TELEMETRY), &paramsQOS1);
        if (rc == MQTT_REQUEST_TIMEOUT_ERROR) {
            ESP_LOGI(TAG, "QOS1 publish ack not received.");
            rc = SUCCESS;
        }
    }
    ESP_LOGI(TAG, "An error occurred in the main loop.");
    abort();
}

void app_main(void) {
    aws_iot_task(NULL);
}
