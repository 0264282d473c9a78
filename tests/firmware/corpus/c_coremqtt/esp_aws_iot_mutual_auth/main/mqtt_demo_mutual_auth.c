/* Boiler controller on esp-aws-iot 202210 (coreMQTT, the Device Shadow library), shaped
 * after its tls_mutual_auth and shadow demos: settings come from sdkconfig. */
#include <string.h>
#include "sdkconfig.h"
#include "core_mqtt.h"
#include "network_transport.h"
#include "shadow.h"

#define AWS_IOT_ENDPOINT        CONFIG_MQTT_BROKER_ENDPOINT
#define AWS_MQTT_PORT           CONFIG_MQTT_BROKER_PORT
#define CLIENT_IDENTIFIER       CONFIG_MQTT_CLIENT_IDENTIFIER
#define THING_NAME              CONFIG_MQTT_CLIENT_IDENTIFIER
#define THING_NAME_LENGTH       ( ( uint16_t ) ( sizeof( THING_NAME ) - 1 ) )
#define SHADOW_TOPIC_UPDATE_DELTA SHADOW_TOPIC_STR_UPDATE_DELTA( THING_NAME, THING_NAME_LENGTH, SHADOW_NAME_CLASSIC, 0 )
#define mqttexampleKEEP_ALIVE_INTERVAL_SECONDS    ( 1800U )

extern const char root_cert_auth_start[] asm("_binary_root_cert_auth_crt_start");
extern const char root_cert_auth_end[] asm("_binary_root_cert_auth_crt_end");

int connectToServer( NetworkContext_t * pNetworkContext )
{
    pNetworkContext->pcHostname = AWS_IOT_ENDPOINT;
    pNetworkContext->xPort = AWS_MQTT_PORT;
    pNetworkContext->pcServerRootCA = root_cert_auth_start;
    pNetworkContext->pcServerRootCASize = root_cert_auth_end - root_cert_auth_start;
    return 0;
}

MQTTStatus_t establishMqttSession( MQTTContext_t * pMqttContext )
{
    MQTTConnectInfo_t connectInfo = { 0 };
    bool sessionPresent;

    /* A clean session: the broker keeps no subscriptions for us. */
    connectInfo.cleanSession = true;
    connectInfo.pClientIdentifier = CLIENT_IDENTIFIER;
    connectInfo.clientIdentifierLength = ( uint16_t ) strlen( CLIENT_IDENTIFIER );
    connectInfo.keepAliveIntervalSec = mqttexampleKEEP_ALIVE_INTERVAL_SECONDS;
    return MQTT_Connect( pMqttContext, &connectInfo, NULL, 1000, &sessionPresent );
}

int isDelta( const char * pTopic, uint16_t topicLength )
{
    return topicLength == sizeof( SHADOW_TOPIC_UPDATE_DELTA ) - 1 &&
           strncmp( pTopic, SHADOW_TOPIC_UPDATE_DELTA, topicLength ) == 0;
}
