// Fleet telemetry agent (TypeScript, compiled with tsc): engine data every interval.
import { mqtt, iot } from 'aws-iot-device-sdk-v2';
import * as fs from 'fs';

interface AgentConfig {
  endpoint: string;
  vin: string;
  certPath: string;
  keyPath: string;
  intervalMs: number;
}

const cfg: AgentConfig = JSON.parse(fs.readFileSync('/etc/fleet/agent.json', 'utf8'));

export async function start(): Promise<mqtt.MqttClientConnection> {
  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cfg.certPath, cfg.keyPath);
  builder.with_endpoint(cfg.endpoint);
  builder.with_client_id(cfg.vin);
  builder.with_keep_alive_seconds(30);
  const connection: mqtt.MqttClientConnection = new mqtt.MqttClient().new_connection(builder.build());
  await connection.connect();
  setInterval(async () => {
    const sample: Record<string, number> = { rpm: 1850, coolant: 88, ts: Date.now() };
    await connection.publish(`fleet/${cfg.vin}/engine`, JSON.stringify(sample), mqtt.QoS.AtLeastOnce);
  }, cfg.intervalMs);
  return connection;
}
