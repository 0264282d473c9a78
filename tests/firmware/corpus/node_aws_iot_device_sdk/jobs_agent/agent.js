// OTA agent: takes firmware jobs from AWS IoT Jobs and reports progress.
const awsIot = require('aws-iot-device-sdk');

const jobs = awsIot.jobs({
  keyPath: 'certs/agent.key',
  certPath: 'certs/agent.crt',
  caPath: 'certs/AmazonRootCA1.pem',
  clientId: 'ota-agent-3',
  host: 'o5p6q7r8s9t0u1-ats.iot.eu-west-1.amazonaws.com',
});

jobs.subscribeToJobs('ota-agent-3', 'firmware-update', (err, job) => {
  if (err) return;
  job.inProgress({ step: 'downloading' }, () => job.succeeded({ step: 'done' }));
});
jobs.startJobNotifications('ota-agent-3');
