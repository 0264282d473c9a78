#include "core_mqtt.h"
#include "aws_clientcredential.h"

static void prvFillConnectInfo( MQTTConnectInfo_t * pxConnectInfo )
{
    pxConnectInfo->cleanSession = true;
    pxConnectInfo->pClientIdentifier = clientcredentialIOT_THING_NAME;
    /* IoT Hub's MQTT user name: {hub}/{device id}/?api-version=... */
    pxConnectInfo->pUserName = democonfigIOTHUB_USERNAME;
    pxConnectInfo->userNameLength = ( uint16_t ) ( sizeof( democonfigIOTHUB_USERNAME ) - 1 );
    pxConnectInfo->clientIdentifierLength = ( uint16_t ) strlen( clientcredentialIOT_THING_NAME );
    pxConnectInfo->keepAliveIntervalSec = sensorKEEP_ALIVE_SECONDS;
}

MQTTStatus_t prvPublishTemperature( MQTTContext_t * pxContext, const char * pcJson )
{
    MQTTPublishInfo_t xPublish = { 0 };
    xPublish.qos = MQTTQoS1;
    xPublish.pTopicName = sensorTELEMETRY_TOPIC;
    xPublish.topicNameLength = ( uint16_t ) strlen( sensorTELEMETRY_TOPIC );
    xPublish.pPayload = pcJson;
    xPublish.payloadLength = strlen( pcJson );
    return MQTT_Publish( pxContext, &xPublish, MQTT_GetPacketId( pxContext ) );
}

MQTTStatus_t prvReportDoor( MQTTContext_t * pxContext, MQTTConnectInfo_t * pxInfo, bool xOpen )
{
    MQTTPublishInfo_t xPublish = { 0 };
    prvFillConnectInfo( pxInfo );
    xPublish.pTopicName = sensorSHADOW_UPDATE_TOPIC;
    xPublish.topicNameLength = ( uint16_t ) strlen( sensorSHADOW_UPDATE_TOPIC );
    xPublish.pPayload = xOpen ? "{\"state\":{\"reported\":{\"door\":\"open\"}}}" : "{\"state\":{\"reported\":{\"door\":\"closed\"}}}";
    xPublish.payloadLength = strlen( xPublish.pPayload );
    return MQTT_Publish( pxContext, &xPublish, MQTT_GetPacketId( pxContext ) );
}
