"""Firmware job runner: takes AWS IoT Jobs, runs them, reports status (jobs sample shape)."""

import json
import signal
import sys
import threading

from awscrt import mqtt
from awsiot import iotjobs, mqtt_connection_builder

THING = sys.argv[1]

connection = mqtt_connection_builder.mtls_from_path(
    endpoint="e5f6g7h8i9j0k1-ats.iot.eu-north-1.amazonaws.com",
    cert_filepath="device.pem.crt",
    pri_key_filepath="private.pem.key",
    client_id=THING,
)
jobs = iotjobs.IotJobsClient(connection)
stop = threading.Event()


def on_next_job(event):
    execution = event.execution
    if execution:
        print("running", execution.job_id, json.dumps(execution.job_document), flush=True)
        ok = execution.job_document.get("version", "").startswith("2.")
        jobs.publish_update_job_execution(
            iotjobs.UpdateJobExecutionRequest(
                thing_name=THING,
                job_id=execution.job_id,
                status=iotjobs.JobStatus.SUCCEEDED if ok else iotjobs.JobStatus.FAILED,
                status_details={"installed": execution.job_document.get("version", "")},
            ),
            mqtt.QoS.AT_LEAST_ONCE,
        )


connection.connect().result()
jobs.subscribe_to_next_job_execution_changed_events(
    iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=THING),
    mqtt.QoS.AT_LEAST_ONCE,
    on_next_job,
)
signal.signal(signal.SIGTERM, lambda *_: stop.set())
while not stop.wait(0.5):
    pass
connection.disconnect().result()
