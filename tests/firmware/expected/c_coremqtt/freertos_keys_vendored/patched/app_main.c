#include "core_mqtt.h"
#include "demo_config.h"

MQTTStatus_t app_connect( MQTTContext_t * pContext )
{
    MQTTConnectInfo_t info = { 0 };
    bool present = false;
    info.cleanSession = true;
    info.pClientIdentifier = democonfigCLIENT_IDENTIFIER;
    /* IoT Hub's MQTT user name: {hub}/{device id}/?api-version=... */
    info.pUserName = democonfigIOTHUB_USERNAME;
    info.userNameLength = ( uint16_t ) ( sizeof( democonfigIOTHUB_USERNAME ) - 1 );
    info.clientIdentifierLength = ( uint16_t ) strlen( democonfigCLIENT_IDENTIFIER );
    info.keepAliveIntervalSec = 60U;
    return MQTT_Connect( pContext, &info, NULL, 1000U, &present );
}

MQTTStatus_t app_publish( MQTTContext_t * pContext, const char * json )
{
    MQTTPublishInfo_t pub = { 0 };
    pub.qos = MQTTQoS1;
    pub.pTopicName = mqttexampleTOPIC;
    pub.topicNameLength = ( uint16_t ) strlen( mqttexampleTOPIC );
    pub.pPayload = json;
    pub.payloadLength = strlen( json );
    return MQTT_Publish( pContext, &pub, MQTT_GetPacketId( pContext ) );
}
