// Door sensor on a Raspberry Pi Zero: open/close events and a shadow with the last state.
const awsIot = require('aws-iot-device-sdk');
const config = require('./config.json');

const device = awsIot.device({
  keyPath: config.keyPath,
  certPath: config.certPath,
  caPath: './certs/AmazonRootCA1.pem',
  clientId: config.thingName,
  host: config.endpoint,
  keepalive: 1800,
});
const shadows = awsIot.thingShadow({ ...config, host: config.endpoint, clientId: `${config.thingName}-shadow` });

device.on('connect', () => {
  device.subscribe(`cmd/doors/${config.thingName}/#`);
  device.publish(`dt/doors/${config.thingName}/event`, JSON.stringify({ open: false, ts: Date.now() }));
});

shadows.on('connect', () => {
  shadows.register(config.thingName, {}, () => {
    shadows.update(config.thingName, { state: { reported: { open: false } } });
  });
});
shadows.on('delta', (thingName, stateObject) => {
  console.log('delta', thingName, stateObject.state);
  // Acknowledge: the door reports the settings it now runs with.
  shadows.update(thingName, { state: { reported: stateObject.state } });
});

process.on('SIGTERM', () => device.end(false, () => shadows.end(false, () => process.exit(0))));
