// Pool pump controller (ESM): flow telemetry, commands from the app, state in the shadow.
import { mqtt, iot } from 'aws-iot-device-sdk-v2';
import { readFileSync } from 'fs';

const settings = JSON.parse(readFileSync(new URL('./settings.json', import.meta.url)));
const decoder = new TextDecoder('utf8');
let speed = settings.defaultSpeed;

const config = iot.AwsIotMqttConnectionConfigBuilder
  .new_mtls_builder_from_path(settings.certFile, settings.keyFile)
  .with_certificate_authority_from_path(undefined, settings.caFile)
  .with_client_id(settings.thingName)
  .with_endpoint('a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com')
  .with_port(8883)
  .with_clean_session(true)
  .with_keep_alive_seconds(60)
  .build();

const connection = new mqtt.MqttClient().new_connection(config);

async function report() {
  const shadowTopic = `$aws/things/${settings.thingName}/shadow/update`;
  await connection.publish(shadowTopic, { state: { reported: { speed, running: speed > 0 } } },
    mqtt.QoS.AtLeastOnce);
}

await connection.connect();
await connection.subscribe(`cmd/pumps/${settings.thingName}/speed`, mqtt.QoS.AtLeastOnce,
  async (topic, payload) => {
    const command = JSON.parse(decoder.decode(payload));
    speed = command.speed;
    await report();
    await connection.publish(`${topic}/ack`, JSON.stringify({ ok: true, speed }),
      mqtt.QoS.AtMostOnce);
    await connection.disconnect();
  });

await connection.publish(`dt/pumps/${settings.thingName}/flow`,
  JSON.stringify({ lpm: 42.5, speed }), mqtt.QoS.AtLeastOnce);
await report();
