/* Greenhouse vent on an ESP32, from esp-aws-iot's thing_shadow sample: the vent opens
 * when the desired state says so, temperature and vent state are reported. */
#include <stdio.h>
#include <string.h>
#include <stdbool.h>

#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "esp_log.h"

#include "aws_iot_config.h"
#include "aws_iot_log.h"
#include "aws_iot_version.h"
#include "aws_iot_mqtt_client_interface.h"
#include "aws_iot_shadow_interface.h"

#define MAX_LENGTH_OF_UPDATE_JSON_BUFFER 200

static const char *TAG = "vent";

extern const uint8_t aws_root_ca_pem_start[] asm("_binary_aws_root_ca_pem_start");
extern const uint8_t certificate_pem_crt_start[] asm("_binary_certificate_pem_crt_start");
extern const uint8_t private_pem_key_start[] asm("_binary_private_pem_key_start");

static bool shadowUpdateInProgress;

void ShadowUpdateStatusCallback(const char *pThingName, ShadowActions_t action, Shadow_Ack_Status_t status,
                                const char *pReceivedJsonDocument, void *pContextData) {
    shadowUpdateInProgress = false;
    if (SHADOW_ACK_ACCEPTED == status) {
        ESP_LOGI(TAG, "Update accepted");
    } else if (SHADOW_ACK_REJECTED == status) {
        ESP_LOGI(TAG, "Update rejected");
    }
}

void ventActuate_Callback(const char *pJsonString, uint32_t JsonStringDataLen, jsonStruct_t *pContext) {
    if (pContext != NULL) {
        ESP_LOGI(TAG, "Delta - Vent state changed to %d", *(bool *) (pContext->pData));
    }
}

void aws_iot_task(void *param) {
    IoT_Error_t rc = FAILURE;
    char JsonDocumentBuffer[MAX_LENGTH_OF_UPDATE_JSON_BUFFER];
    size_t sizeOfJsonDocumentBuffer = sizeof(JsonDocumentBuffer) / sizeof(JsonDocumentBuffer[0]);
    float temperature = 24.5f;
    bool ventOpen = false;
    jsonStruct_t ventActuator;
    jsonStruct_t temperatureHandler;
    AWS_IoT_Client mqttClient;

    ventActuator.cb = ventActuate_Callback;
    ventActuator.pData = &ventOpen;
    ventActuator.dataLength = sizeof(bool);
    ventActuator.pKey = "ventOpen";
    ventActuator.type = SHADOW_JSON_BOOL;

    temperatureHandler.cb = NULL;
    temperatureHandler.pKey = "temperature";
    temperatureHandler.pData = &temperature;
    temperatureHandler.dataLength = sizeof(float);
    temperatureHandler.type = SHADOW_JSON_FLOAT;

    ShadowInitParameters_t sp = ShadowInitParametersDefault;
    sp.pHost = AWS_IOT_MQTT_HOST;
    sp.port = AWS_IOT_MQTT_PORT;
    sp.pClientCRT = (const char *)certificate_pem_crt_start;
    sp.pClientKey = (const char *)private_pem_key_start;
    sp.pRootCA = (const char *)aws_root_ca_pem_start;
    sp.enableAutoReconnect = false;
    sp.disconnectHandler = NULL;

    ESP_LOGI(TAG, "Shadow Init");
    rc = aws_iot_shadow_init(&mqttClient, &sp);
    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "aws_iot_shadow_init returned error %d, aborting...", rc);
        abort();
    }

    ShadowConnectParameters_t scp = ShadowConnectParametersDefault;
    scp.pMyThingName = CONFIG_AWS_EXAMPLE_THING_NAME;
    scp.pMqttClientId = CONFIG_AWS_EXAMPLE_CLIENT_ID;
    scp.mqttClientIdLen = (uint16_t) strlen(CONFIG_AWS_EXAMPLE_CLIENT_ID);

    ESP_LOGI(TAG, "Shadow Connect");
    rc = aws_iot_shadow_connect(&mqttClient, &scp);
    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "aws_iot_shadow_connect returned error %d, aborting...", rc);
        abort();
    }

    rc = aws_iot_shadow_set_autoreconnect_status(&mqttClient, true);
    rc = aws_iot_shadow_register_delta(&mqttClient, &ventActuator);
    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "Shadow Register Delta Error");
    }

    while (NETWORK_ATTEMPTING_RECONNECT == rc || NETWORK_RECONNECTED == rc || SUCCESS == rc) {
        rc = aws_iot_shadow_yield(&mqttClient, 200);
        if (NETWORK_ATTEMPTING_RECONNECT == rc || shadowUpdateInProgress) {
            rc = aws_iot_shadow_yield(&mqttClient, 1000);
            continue;
        }
        temperature += 0.5f;
        rc = aws_iot_shadow_init_json_document(JsonDocumentBuffer, sizeOfJsonDocumentBuffer);
        if (SUCCESS == rc) {
            rc = aws_iot_shadow_add_reported(JsonDocumentBuffer, sizeOfJsonDocumentBuffer, 2, &temperatureHandler,
                                             &ventActuator);
            if (SUCCESS == rc) {
                rc = aws_iot_finalize_json_document(JsonDocumentBuffer, sizeOfJsonDocumentBuffer);
                if (SUCCESS == rc) {
                    ESP_LOGI(TAG, "Update Shadow: %s", JsonDocumentBuffer);
                    rc = aws_iot_shadow_update(&mqttClient, CONFIG_AWS_EXAMPLE_THING_NAME, JsonDocumentBuffer,
                                               ShadowUpdateStatusCallback, NULL, 4, true);
                    shadowUpdateInProgress = true;
                }
            }
        }
        vTaskDelay(1000 / portTICK_PERIOD_MS);
    }

    if (SUCCESS != rc) {
        ESP_LOGI(TAG, "An error occurred in the loop %d", rc);
    }
    rc = aws_iot_shadow_disconnect(&mqttClient);
}

void app_main(void) {
    aws_iot_task(NULL);
}
