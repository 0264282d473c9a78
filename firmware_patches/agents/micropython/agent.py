"""Migration agent for MicroPython devices: AWS IoT Core to Azure IoT Hub over umqtt.

The same protocol as the Python agent (`../python/agent.py`) with only what MicroPython
has: umqtt.simple, json, ssl with the device's certificate and key, one thread and a
polling loop. It runs as the device's main program and also sends its readings.

1. Connects to AWS IoT as its thing and listens on the raw jobs topics; asks for pending
   work (`start-next`) at every connect.
2. Takes a `migrate-to-azure-iot-hub` job from `start-next/accepted`, rejects documents it
   cannot carry out, writes the job into its state file (the AWS settings are already
   there: the fallback survives a reboot).
3. While still on AWS, connects to IoT Hub with the SAME certificate and key (the hub
   knows its thumbprint; the password is empty), reports `migration` in its twin, moves
   its readings to Azure, marks the job SUCCEEDED, and only then lets go of AWS.
4. If Azure stays unreachable until `fallbackDeadlineSeconds`, marks the job FAILED with
   the reason and carries on with AWS.

Its configuration is a JSON file (`config.json`, or the path given as first argument on
the unix port): `thing`, `endpoint` (host[:port]), `cert` and `key` (DER works on every
port), optional `ca` (PEM to trust for AWS), `azure_ca` (PEM to trust for the hub when the
job names only well-known roots), `state` (default `state.json`) and `telemetry_seconds`.
See README.md beside it.
"""

try:
    import ujson as json  # type: ignore[import-untyped]
except ImportError:
    import json
try:
    import utime as time  # type: ignore[import-not-found]
except ImportError:
    import time
try:
    import ssl
except ImportError:
    import ussl as ssl  # type: ignore[import-not-found,no-redef]
import binascii
import os
import sys

from umqtt.simple import MQTTClient  # type: ignore[import-not-found]

# mypy: allow-untyped-defs, allow-untyped-calls
# ruff: noqa: PTH104, PTH107, PTH123, ANN001, ANN002, ANN201, ANN204, UP031, S110, SIM105
# MicroPython has no pathlib, contextlib or typing module and small ports have no
# f-strings: the rules for a CPython program's standard library do not apply here.

OPERATION = "migrate-to-azure-iot-hub"
API_VERSION = "2021-04-12"
KEEPALIVE = 60  # seconds; a ping every half of it keeps both brokers from dropping us
RETRY_MS = 2000  # between attempts to reach a cloud
ANSWER_MS = 10000  # how long to wait for the twin or the jobs service to answer
BACKLOG = 50  # readings kept while no cloud takes them
SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

# MicroPython's clock wraps: compare ticks with ticks_diff (CPython's shim has no wrap).
ticks_ms = time.ticks_ms
ticks_diff = getattr(time, "ticks_diff", lambda a, b: a - b)


def log(*parts):
    print("agent:", *parts)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save(path, data):
    # Write aside, then rename: a reboot mid-write leaves the old state, never half of one.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data))
    try:
        os.rename(tmp, path)
    except OSError:  # FAT will not rename over an existing file; LittleFS does
        os.remove(path)
        os.rename(tmp, path)


def quote(text):
    """Percent-encode for IoT Hub's property bag (MicroPython has no urllib)."""
    return "".join(c if c in SAFE else "".join("%%%02X" % b for b in c.encode()) for c in text)


def der(pem):
    """The first certificate of a PEM text, as DER: every port's TLS stack takes DER, not
    every one parses PEM (axTLS never, some mbedtls builds not)."""
    body = pem[pem.find("-----BEGIN CERTIFICATE-----") :].split("-----")[2]
    return binascii.a2b_base64(body.replace("\n", "").replace("\r", ""))


def iso_now():
    # Boards without a battery-backed clock say 2000-01-01 until ntptime.settime() runs.
    t = getattr(time, "gmtime", time.localtime)()
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % tuple(t[:6])


def problem_with(document):
    """Why this agent cannot carry out a job document, or None when it can."""
    if document.get("operation") != OPERATION or document.get("version", "1") != "1":
        return "unsupported job document"
    if not isinstance(document.get("hub"), dict) or not document["hub"].get("hostName"):
        return "job document names no hub"
    if (document.get("auth") or {}).get("mode", "x509-thumbprint") != "x509-thumbprint":
        return "only x509-thumbprint auth is supported"
    if document.get("firmware"):
        return "this agent cannot install firmware artifacts"
    return None


class Agent:
    """One device: its readings on the current cloud, and the migration job."""

    def __init__(self, config):
        self.config = config
        self.thing = config["thing"]
        self.jobs = "$aws/things/%s/jobs/" % self.thing
        self.state_path = config.get("state", "state.json")
        # No state file but a whole .tmp: power went between save()'s remove and rename.
        self.state = load(self.state_path) or load(self.state_path + ".tmp")
        if "aws" not in self.state:  # the first boot: keep the way back before anything else
            self.state["aws"] = {
                "endpoint": config["endpoint"],
                "cert": config["cert"],
                "key": config["key"],
                "ca": config.get("ca"),
            }
            self.state["cloud"] = "aws"
            save(self.state_path, self.state)
        self.aws = None
        self.azure = None
        self.inbox = []  # (topic, payload) from either cloud, handled by the main loop
        self.backlog = []  # readings not yet acknowledged by a cloud, oldest first
        self.migration = None  # the job being carried out
        self.rid = 0
        self.seq = 0
        self.last_try = None
        self.last_ping = ticks_ms()

    def on_azure(self):
        return self.state.get("cloud") == "azure"

    def job_to_close(self):
        """The job this device moved for, while AWS has not yet recorded it SUCCEEDED
        (a reboot or a lost link between the move and the update)."""
        job = self.state.get("job")
        return job if self.on_azure() and job and not job.get("closed") else None

    # -- connections ---------------------------------------------------------------------

    def client(self, client_id, host, port, ca, user=None):
        aws = self.state["aws"]
        password = None if user is None else ""  # X.509 on IoT Hub: empty password
        try:  # umqtt.simple up to 1.3 hands ssl_params to ussl.wrap_socket
            params = {"key": read(aws["key"]), "cert": read(aws["cert"]), "server_hostname": host}
            if ca:
                params["cadata"] = der(ca)
                params["cert_reqs"] = ssl.CERT_REQUIRED
            c = MQTTClient(
                client_id, host, port, user, password, KEEPALIVE, ssl=True, ssl_params=params
            )
        except TypeError:  # from 1.4 it takes an SSLContext instead
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_cert_chain(aws["cert"], aws["key"])
            if ca:
                context.load_verify_locations(cadata=der(ca))
                context.verify_mode = ssl.CERT_REQUIRED
            c = MQTTClient(client_id, host, port, user, password, KEEPALIVE, ssl=context)
        # The callback can run inside publish() and subscribe(): only queue here.
        c.set_callback(lambda topic, msg: self.inbox.append((topic.decode(), msg)))
        try:
            c.connect()
        except Exception:
            close(c)  # a board has a handful of sockets: a failed try must not keep one
            raise
        return c

    def connect_aws(self):
        aws = self.state["aws"]
        host, port = (aws["endpoint"] + ":8883").split(":")[:2]
        ca = read(aws["ca"]).decode() if aws.get("ca") else None
        c = self.client(self.thing, host, int(port), ca)
        try:
            for topic in (
                "notify-next",
                "start-next/accepted",
                "+/update/accepted",
                "+/update/rejected",
            ):
                c.subscribe(self.jobs + topic, 1)
            c.publish(self.jobs + "start-next", b"{}", qos=1)  # anything pending for me?
        except Exception:
            close(c)
            raise
        log("on aws", aws["endpoint"])
        return c

    def connect_azure(self, azure):
        user = "%s/%s/?api-version=%s" % (azure["hostName"], azure["deviceId"], API_VERSION)
        host = azure.get("gatewayHostName") or azure["hostName"]
        c = self.client(azure["deviceId"], host, 8883, azure.get("ca"), user)
        try:
            c.subscribe("$iothub/twin/res/#", 1)
        except Exception:
            close(c)
            raise
        log("on azure", azure["hostName"], "as", azure["deviceId"])
        return c

    def reconnect(self):
        """Get back on the cloud the state file names, and on AWS while a job there is still
        to be closed; at most every RETRY_MS."""
        want_azure = self.on_azure() and self.azure is None
        want_aws = self.aws is None and (not self.on_azure() or self.job_to_close())
        now = ticks_ms()
        if not (want_azure or want_aws) or (
            self.last_try is not None and ticks_diff(now, self.last_try) < RETRY_MS
        ):
            return
        self.last_try = now
        if want_azure:
            try:
                self.azure = self.connect_azure(self.state["azure"])
            except Exception as e:
                log("azure connect failed:", repr(e))
        if want_aws:
            try:
                self.aws = self.connect_aws()
            except Exception as e:
                log("aws connect failed:", repr(e))

    def lost(self, name, error):
        """Drop a broken connection; reconnect() brings it back if it is still needed."""
        log(name, "lost:", repr(error))
        close(getattr(self, name))
        setattr(self, name, None)

    # -- messages ------------------------------------------------------------------------

    def poll(self):
        ping = ticks_diff(ticks_ms(), self.last_ping) > KEEPALIVE * 500
        if ping:
            self.last_ping = ticks_ms()
        for name in ("aws", "azure"):
            c = getattr(self, name)
            try:
                if c is not None:
                    c.check_msg()
                    if ping:
                        c.ping()
            except Exception as e:
                self.lost(name, e)
        while self.inbox:
            topic, msg = self.inbox.pop(0)
            try:
                self.handle(topic, msg)
            except Exception as e:  # only AWS is spoken to while handling: it went away
                self.lost("aws", e)

    def wait_for(self, c, match):
        """Poll `c` until a message `match(topic, body)` accepts arrives; return its topic."""
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < ANSWER_MS:
            for i, (topic, msg) in enumerate(self.inbox):
                if match(topic, msg):
                    self.inbox.pop(i)
                    return topic
            c.check_msg()
            time.sleep(0.02)
        return None

    def handle(self, topic, msg):
        if not topic.startswith(self.jobs) or self.aws is None:
            return  # twin answers nobody waits for any more
        try:
            body = json.loads(msg)
        except ValueError:
            return
        execution = body.get("execution")
        if topic.endswith("/notify-next") and execution and self.migration is None:
            self.aws.publish(self.jobs + "start-next", b"{}", qos=1)  # takes it
        elif topic.endswith("/start-next/accepted") and execution:
            self.take(execution["jobId"], execution.get("jobDocument") or {})
        elif topic.endswith("/start-next/accepted") and self.job_to_close():
            self.closed()  # nothing pending any more: AWS recorded the end of that job
        elif topic.endswith("/update/rejected"):
            log("job update rejected:", msg)

    # -- the job -------------------------------------------------------------------------

    def update_job(self, job_id, status, details):
        if self.aws is None:
            raise OSError("not connected to aws")
        # The token tells this update's answer from an earlier one of the same job.
        body = {"status": status, "statusDetails": details, "clientToken": status.lower()}
        self.aws.publish(self.jobs + job_id + "/update", json.dumps(body).encode(), qos=1)
        log("job", job_id, status, details)

    def take(self, job_id, document):
        job = self.job_to_close()
        if job and job["jobId"] == job_id:
            self.close_job(job_id)
            return
        if self.on_azure() or (self.migration and self.migration["jobId"] == job_id):
            return
        problem = problem_with(document)
        if problem:
            self.update_job(job_id, "REJECTED", {"reason": problem})
            return
        hub = document["hub"]
        device_id = document.get("deviceId", "$thingName")
        pems = [a for a in document.get("trustAnchors", []) if "-----BEGIN" in a]
        ca = "\n".join(pems) or (
            read(self.config["azure_ca"]).decode() if "azure_ca" in self.config else None
        )
        azure = {
            "hostName": hub["hostName"],
            "gatewayHostName": hub.get("gatewayHostName"),
            "deviceId": self.thing if device_id == "$thingName" else device_id,
            "ca": ca,
        }
        # A reboot from here on comes back on AWS and takes the same job again.
        self.state["job"] = {"jobId": job_id}
        save(self.state_path, self.state)
        seconds = int(document.get("fallbackDeadlineSeconds", 60))
        self.migration = {
            "jobId": job_id,
            "azure": azure,
            "start": ticks_ms(),
            "deadline": seconds * 1000,
            "tried": None,
            "error": "no attempt",
        }
        self.update_job(job_id, "IN_PROGRESS", {"step": "connecting to azure"})

    def migrate(self):
        """One step of the job at hand: one try at Azure, between readings on AWS."""
        m = self.migration
        if m is None or self.aws is None:
            return
        if m["tried"] is not None and ticks_diff(ticks_ms(), m["tried"]) < RETRY_MS:
            return
        m["tried"] = ticks_ms()
        try:
            azure = self.connect_azure(m["azure"])
        except Exception as e:
            m["error"] = repr(e)
            log("azure not reachable yet:", m["error"])
            if ticks_diff(ticks_ms(), m["start"]) >= m["deadline"]:
                self.fall_back(m)
            return
        try:
            self.report_migration(azure, m["jobId"])
        except Exception as e:
            close(azure)
            m["error"] = repr(e)
            return
        # Made: readings go to Azure from here, then the job is closed, then AWS is let go.
        self.azure = azure
        self.migration = None
        self.state["cloud"] = "azure"
        self.state["azure"] = m["azure"]
        save(self.state_path, self.state)
        try:
            self.close_job(m["jobId"])
        except Exception as e:  # reconnect() comes back to AWS to close it
            self.lost("aws", e)

    def report_migration(self, azure, job_id):
        self.rid += 1
        migration = {"status": "migrated", "jobId": job_id, "from": "aws-iot-core", "at": iso_now()}
        topic = "$iothub/twin/PATCH/properties/reported/?$rid=%d" % self.rid
        azure.publish(topic, json.dumps({"migration": migration}).encode(), qos=1)
        rid = "$rid=%d" % self.rid
        answer = self.wait_for(
            azure,
            lambda t, _msg: t.startswith("$iothub/twin/res/") and rid in t.split("?")[1].split("&"),
        )
        status = int(answer.split("/")[3]) if answer else 0
        if not 200 <= status < 300:
            raise OSError("twin patch answered %s" % (status or "nothing"))

    def close_job(self, job_id):
        """Mark the job SUCCEEDED, wait for AWS to record it, and let go of AWS."""
        self.update_job(job_id, "SUCCEEDED", {"azure": "connected"})
        answer = self.wait_for(
            self.aws,
            lambda t, msg: (
                t.startswith(self.jobs + job_id + "/update/")
                and json.loads(msg).get("clientToken") == "succeeded"
            ),
        )
        if answer is None:
            raise OSError("the jobs service did not answer")
        self.closed()  # accepted, or rejected because the execution had ended already

    def closed(self):
        self.state["job"]["closed"] = True
        save(self.state_path, self.state)
        close(self.aws)  # break only after make, and after AWS knows
        self.aws = None
        log("left aws")

    def fall_back(self, m):
        self.migration = None
        reason = ("azure unreachable: " + m["error"])[:1000]
        self.state["cloud"] = "aws"
        self.state["job"]["failed"] = reason
        save(self.state_path, self.state)
        self.update_job(m["jobId"], "FAILED", {"reason": reason})

    # -- readings ------------------------------------------------------------------------

    def take_reading(self):
        self.seq += 1
        reading = {"seq": self.seq, "ts": time.time(), "temperature": 20 + self.seq % 50 / 10}
        self.backlog.append(json.dumps(reading).encode())
        if len(self.backlog) > BACKLOG:  # a long outage costs the oldest readings, not the RAM
            self.backlog.pop(0)

    def send_readings(self):
        """Send the backlog, oldest first, on the current cloud; keep what is not acked."""
        topic = "dt/" + self.thing
        if self.on_azure():
            # The AWS topic travels as properties, as the relay stamps it, so the routes
            # translated from AWS rules match this device's messages after cutover too.
            props = "%24.ct=application%2Fjson&%24.ce=utf-8&awsTopic=" + quote(topic)
            for level, name in enumerate(topic.split("/")):
                props += "&awsTopic%d=%s" % (level + 1, quote(name))
            c = self.azure
            topic = "devices/%s/messages/events/%s" % (self.state["azure"]["deviceId"], props)
        else:
            c = self.aws
        while c is not None and self.backlog:
            try:
                c.publish(topic, self.backlog[0], qos=1)  # returns once acknowledged
            except Exception as e:
                self.lost("azure" if self.on_azure() else "aws", e)
                return
            self.backlog.pop(0)

    def run(self):
        every = int(float(self.config.get("telemetry_seconds", 5)) * 1000)
        last = ticks_ms() - every
        while True:
            self.reconnect()
            self.poll()
            self.migrate()
            if every > 0 and ticks_diff(ticks_ms(), last) >= every:
                last = ticks_ms()
                self.take_reading()
            self.send_readings()
            time.sleep(0.05)


def close(c):
    if c is None or c.sock is None:
        return
    try:
        c.disconnect()
    except Exception:
        try:
            c.sock.close()
        except Exception:
            pass


def main():
    path = sys.argv[1] if len(getattr(sys, "argv", [])) > 1 else "config.json"
    agent = Agent(load(path))
    try:
        agent.run()
    except KeyboardInterrupt:
        close(agent.aws)
        close(agent.azure)


if __name__ == "__main__":
    main()
