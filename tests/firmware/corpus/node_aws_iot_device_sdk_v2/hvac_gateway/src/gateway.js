// HVAC gateway: one named shadow per zone, readings per zone, settings from the app.
const awsiot = require('aws-iot-device-sdk-v2');
const config = require('../config.json');

const mqtt = awsiot.mqtt;
const clientId = config.clientId || `hvac-${Math.floor(Math.random() * 100000000)}`;
const zones = ['lobby', 'office'];
const setpoints = { lobby: 21, office: 22 };
let remaining = Number(process.env.EXPECTED_CHANGES || 1);

async function connect() {
  const builder = awsiot.iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(
    config.certificate, config.privateKey);
  builder.with_endpoint(config.endpoint);
  builder.with_client_id(clientId);
  const connection = new mqtt.MqttClient(new awsiot.io.ClientBootstrap())
    .new_connection(builder.build());
  await connection.connect();
  return connection;
}

async function main() {
  const connection = await connect();
  const shadow = new awsiot.iotshadow.IotShadowClient(connection);
  for (const zone of zones) {
    const request = { thingName: config.thingName, shadowName: zone };
    await shadow.subscribeToNamedShadowDeltaUpdatedEvents(request, mqtt.QoS.AtLeastOnce,
      async (error, delta) => {
        if (error) return;
        setpoints[zone] = delta.state.setpoint;
        await shadow.publishUpdateNamedShadow(
          { ...request, state: { reported: { setpoint: setpoints[zone] } } },
          mqtt.QoS.AtLeastOnce);
        remaining -= 1;
        if (remaining === 0) {
          await connection.disconnect();
        }
      });
    await shadow.subscribeToGetNamedShadowAccepted(request, mqtt.QoS.AtLeastOnce,
      (error, response) => console.log(zone, 'shadow', JSON.stringify(response.state)));
    await shadow.publishGetNamedShadow(request, mqtt.QoS.AtLeastOnce);
    await shadow.publishUpdateNamedShadow(
      { ...request, state: { reported: { setpoint: setpoints[zone], online: true } } },
      mqtt.QoS.AtLeastOnce);
    await connection.publish(`hvac/${config.thingName}/${zone}/climate`,
      JSON.stringify({ zone, celsius: 20.5, humidity: 41 }), mqtt.QoS.AtLeastOnce);
  }
}

main();
