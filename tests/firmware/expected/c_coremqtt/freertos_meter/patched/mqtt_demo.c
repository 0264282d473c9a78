#include "core_mqtt.h"
#include "demo_config.h"

static MQTTStatus_t publishReading( MQTTContext_t * pContext, const char * payload )
{
    MQTTPublishInfo_t publishInfo = { 0 };
    publishInfo.qos = MQTTQoS1;
    publishInfo.pTopicName = mqttexampleTOPIC;
    publishInfo.topicNameLength = sizeof( mqttexampleTOPIC ) - 1;
    publishInfo.pPayload = payload;
    publishInfo.payloadLength = strlen( payload );
    return MQTT_Publish( pContext, &publishInfo, MQTT_GetPacketId( pContext ) );
}

MQTTStatus_t connectToBroker( MQTTContext_t * pContext )
{
    MQTTConnectInfo_t connectInfo = { 0 };
    bool sessionPresent;
    connectInfo.pClientIdentifier = democonfigCLIENT_IDENTIFIER;
    /* IoT Hub's MQTT user name: {hub}/{device id}/?api-version=... */
    connectInfo.pUserName = democonfigIOTHUB_USERNAME;
    connectInfo.userNameLength = ( uint16_t ) ( sizeof( democonfigIOTHUB_USERNAME ) - 1 );
    connectInfo.clientIdentifierLength = sizeof( democonfigCLIENT_IDENTIFIER ) - 1;
    connectInfo.keepAliveIntervalSec = mqttexampleKEEP_ALIVE_TIMEOUT_SECONDS;
    return MQTT_Connect( pContext, &connectInfo, NULL, 1000U, &sessionPresent );
}
