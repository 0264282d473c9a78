'use strict';
// Cold-room monitor on a Raspberry Pi 4: temperature every few seconds, the compressor
// setpoint from the shadow. Shaped after the aws-iot-device-sdk-js-v2 shadow sample.
const { mqtt, iot, iotshadow } = require('aws-iot-device-sdk-v2');
const { TextDecoder } = require('util');

const THING_NAME = process.env.THING_NAME || 'cold-room-3';
const READINGS = Number(process.env.READINGS || 3);
const state = { setpoint: -18, door: 'closed' };

function build_connection() {
  const config_builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(
    'certs/device.pem.crt',
    'certs/private.pem.key',
  );
  config_builder.with_certificate_authority_from_path(undefined, 'certs/AmazonRootCA1.pem');
  config_builder.with_clean_session(false);
  config_builder.with_client_id(THING_NAME);
  config_builder.with_endpoint(process.env.AWS_IOT_ENDPOINT);
  config_builder.with_keep_alive_seconds(1200);
  const config = config_builder.build();
  const client = new mqtt.MqttClient();
  return client.new_connection(config);
}

async function main() {
  const connection = build_connection();
  connection.on('interrupt', (error) => console.log(`connection interrupted: ${error}`));
  await connection.connect();
  const shadow = new iotshadow.IotShadowClient(connection);

  await shadow.subscribeToUpdateShadowAccepted({ thingName: THING_NAME }, mqtt.QoS.AtLeastOnce,
    (error, response) => console.log('shadow accepted', JSON.stringify(response.state)));
  await shadow.subscribeToShadowDeltaUpdatedEvents({ thingName: THING_NAME }, mqtt.QoS.AtLeastOnce,
    async (error, delta) => {
      if (error || !delta.state) return;
      // The cloud asked for a new setpoint: run with it, then report what we run with.
      Object.assign(state, delta.state);
      await shadow.publishUpdateShadow({ thingName: THING_NAME, state: { reported: state } },
        mqtt.QoS.AtLeastOnce);
    });

  for (let n = 0; n < READINGS; n += 1) {
    const reading = { celsius: -17.5 - n / 10, setpoint: state.setpoint, seq: n };
    await connection.publish(`dt/coldrooms/${THING_NAME}/temperature`, JSON.stringify(reading),
      mqtt.QoS.AtLeastOnce);
  }
  await shadow.publishUpdateShadow({ thingName: THING_NAME, state: { reported: state } },
    mqtt.QoS.AtLeastOnce);

  process.on('SIGTERM', async () => {
    await connection.disconnect();
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(new TextDecoder().decode(Buffer.from(String(error))));
  process.exit(1);
});
