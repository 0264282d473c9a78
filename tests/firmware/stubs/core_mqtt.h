/* The slice of coreMQTT's API (v2.x core_mqtt.h) the corpus demos use, for gcc checks. */
#ifndef CORE_MQTT_STUB_H
#define CORE_MQTT_STUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum MQTTStatus { MQTTSuccess = 0, MQTTBadParameter } MQTTStatus_t;
typedef enum MQTTQoS { MQTTQoS0 = 0, MQTTQoS1 = 1, MQTTQoS2 = 2 } MQTTQoS_t;

typedef struct MQTTContext { int unused; } MQTTContext_t;

typedef struct MQTTConnectInfo {
    bool cleanSession;
    uint16_t keepAliveIntervalSec;
    const char * pClientIdentifier;
    uint16_t clientIdentifierLength;
    const char * pUserName;
    uint16_t userNameLength;
    const char * pPassword;
    uint16_t passwordLength;
} MQTTConnectInfo_t;

typedef struct MQTTPublishInfo {
    MQTTQoS_t qos;
    bool retain;
    bool dup;
    const char * pTopicName;
    uint16_t topicNameLength;
    const void * pPayload;
    size_t payloadLength;
} MQTTPublishInfo_t;

MQTTStatus_t MQTT_Connect( MQTTContext_t * pContext, const MQTTConnectInfo_t * pConnectInfo,
                           const MQTTPublishInfo_t * pWillInfo, uint32_t timeoutMs,
                           bool * pSessionPresent );
MQTTStatus_t MQTT_Publish( MQTTContext_t * pContext, const MQTTPublishInfo_t * pPublishInfo,
                           uint16_t packetId );
uint16_t MQTT_GetPacketId( MQTTContext_t * pContext );

#endif
