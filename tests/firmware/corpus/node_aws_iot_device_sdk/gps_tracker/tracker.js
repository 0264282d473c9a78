'use strict';
// GPS tracker on a delivery van: positions every few seconds, commands from dispatch.
const awsIot = require('aws-iot-device-sdk');

const name = process.env.VAN_NAME || 'van-12';
const tracker = awsIot.device({
  keyPath: 'certs/tracker.key',
  certPath: 'certs/tracker.crt',
  caPath: 'certs/AmazonRootCA1.pem',
  clientId: `tracker-${Math.random().toString(16).slice(2)}`,
  host: process.env.AWS_IOT_ENDPOINT,
  keepalive: 300,
});

tracker.on('connect', () => {
  tracker.subscribe(`cmd/vans/${name}`, { qos: 1 }, () => {
    const fixes = [[52.52, 13.405], [52.521, 13.409]];
    fixes.forEach(([lat, lon], seq) => {
      tracker.publish(`vans/${name}/position`, JSON.stringify({ seq, lat, lon }), { qos: 1 });
    });
  });
});

tracker.on('message', (topic, payload) => {
  const command = JSON.parse(payload.toString());
  tracker.publish(`${topic}/ack`, JSON.stringify({ ack: command.cmd }), { qos: 1 }, () => {
    tracker.end(false, () => process.exit(0));
  });
});
