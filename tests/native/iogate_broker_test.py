#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""iogate against peers we did not write: mosquitto started here on
127.0.0.1 with mutual TLS (a throwaway CA, server and client certificates
made by openssl), a paho-mqtt client as the primary host, payloads decoded
with python3-protobuf from the project's schema compiled by protoc here, and
protoc --decode_raw.

    iogate_broker_test.py IOGATE PEER_NODE PROTO CASE

CASE: cli, tls, lifecycle, device, primary_host, server_list, acl, store_forward,
modbus_device (SeaI/O modules simulated by seaio_sim.py over Modbus/TCP);
vm_cards and vm_serial in the test VM (root, iocard.ko's virtual cards, the
16550A UARTs of QEMU's pci-serial-4x; tests/vm). Waits are bounded
only as guards against a hang; every verdict comes from an event (a message,
a log line, an exit status)."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt

import gate_test
from gate_test import CHILDREN, GUARD, ON_FAIL, check, fail, finish, free_port, scratch

IOGATE, PEER, PROTO, CASE = sys.argv[1:5]
TMP = scratch("iogate_test_", "certificates, configurations and mosquitto's logs")
GROUP, NODE = "plant1", "node7"

subprocess.run(["protoc", "-I", os.path.dirname(PROTO), "--python_out", TMP, PROTO], check=True)
sys.path.insert(0, TMP)
import sparkplug_b_pb2 as pb  # noqa: E402

def run(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, **kw)


def make_ca(name):
    return gate_test.make_ca(TMP, name)


def make_cert(name, cn, ca, san=None):
    return gate_test.make_cert(TMP, name, cn, ca, san)


CA = make_ca("ca")
ROGUE_CA = make_ca("rogue-ca")
SERVER = make_cert("server", "broker", CA, "IP:127.0.0.1")
OTHER_NAME_SERVER = make_cert("server-other", "broker", CA, "DNS:broker.invalid")
NODE_CERT = make_cert("node", NODE, CA)
HOST_CERT = make_cert("host", "scada", CA)
INTRUDER_CERT = make_cert("intruder", "intruder", CA)
ROGUE_NODE = make_cert("rogue-node", NODE, ROGUE_CA)


class broker(gate_test.mosquitto_tls):
    """mosquitto on 127.0.0.1 requiring client certificates of CA."""

    def __init__(self, server=SERVER, port=None, acl=None):
        super().__init__(TMP, CA, server, port=port, acl=acl)


class host:
    """The primary host application: paho-mqtt with its own certificate."""

    def __init__(self, b, cert=HOST_CERT, client_id="scada"):
        self.q = queue.Queue()
        self.events = queue.Queue()
        self.c = mqtt.Client(client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311)
        self.c.tls_set(ca_certs=CA[1], certfile=cert[1], keyfile=cert[0])
        self.c.on_connect = lambda c, u, f, rc: self.events.put(("connect", rc))
        self.c.on_disconnect = lambda c, u, rc: self.events.put(("disconnect", rc))
        self.c.on_message = lambda c, u, m: self.q.put((m.topic, bytes(m.payload), m.qos, m.retain))
        self.c.connect("127.0.0.1", b.port)
        self.c.loop_start()

    def connected(self):
        try:
            kind, rc = self.events.get(timeout=GUARD)
        except queue.Empty:
            fail("paho: no CONNACK and no disconnect")
        return kind == "connect" and rc == 0

    def subscribe(self, topic="spBv1.0/#"):
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos=1)
        check(done.wait(GUARD), "no SUBACK")

    def next(self, what):
        while True:
            try:
                t, p, qos, retain = self.q.get(timeout=GUARD)
            except queue.Empty:
                fail(f"no message while waiting for {what}")
            if "/NCMD/" not in t and "/DCMD/" not in t and "/STATE/" not in t:  # our own
                return t, p, qos, retain

    def expect(self, topic):
        t, p, qos, retain = self.next(topic)
        check(t == topic, f"expected {topic}, got {t}")
        msg = pb.payload()
        msg.ParseFromString(p)
        return msg, p, qos, retain

    def nothing_pending(self):
        while not self.q.empty():
            t = self.q.get()[0]
            if "/NCMD/" not in t and "/DCMD/" not in t and "/STATE/" not in t:
                return False
        return True

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=GUARD)
        check(info.is_published(), f"paho did not publish to {topic}")

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def broker_and_host(**kw):
    """A broker, and the host connected to it (subscribed to spBv1.0/# unless subscribe=False)."""
    subscribe = kw.pop("subscribe", True)
    b = broker(**kw)
    h = host(b)
    check(h.connected(), "the host did not connect")
    if subscribe:
        h.subscribe()
    return b, h


def metric(msg, name):
    for m in msg.metrics:
        if m.name == name:
            return m
    fail(f"no metric {name} in {msg}")


def command(name, value):
    p = pb.payload()
    p.timestamp = int(time.time() * 1000)
    m = p.metrics.add()
    m.name = name
    m.datatype = 11
    m.boolean_value = value
    return p.SerializeToString()


def config(b_ports, extra="", tls=True, cert=NODE_CERT, state=None, host_name="127.0.0.1", journal_capacity=10000):
    path = f"{TMP}/iogate-{len(os.listdir(TMP))}.toml"
    servers = ", ".join(f'"mqtts://{host_name}:{p}"' for p in b_ports)
    with open(path, "w") as f:
        f.write(f'group_id = "{GROUP}"\nedge_node_id = "{NODE}"\nstate_file = "{state or TMP + "/state"}"\n'
                f"{extra}\n[mqtt]\nservers = [{servers}]\nca_file = \"{CA[1]}\"\n"
                f"cert_file = \"{cert[1]}\"\nkey_file = \"{cert[0]}\"\nclient_id = \"{GROUP}:{NODE}\"\n"
                "backoff_min_ms = 50\nbackoff_max_ms = 200\n"
                f"[store]\njournal_file = \"{TMP}/journal\"\ncapacity = {journal_capacity}\n"
                "replay_per_second = 200\n")
    return path


class gate:
    """iogate or the peer node, its stderr (and stdout) read line by line."""

    def __init__(self, cfg, program=None):
        program = program or IOGATE
        args = [program, "--config", cfg] if program == IOGATE else [program, cfg]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        CHILDREN.append(self.proc)
        self.lines = queue.Queue()
        self.seen = []
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        ON_FAIL.append(self.show)

    def show(self):
        """What it printed so far, for a failure's report."""
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        print(f"{os.path.basename(self.proc.args[0])} printed:", flush=True)
        for s in self.seen:
            print("  " + s, flush=True)

    def _read(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, text):
        deadline = time.monotonic() + GUARD
        while True:
            for s in self.seen:
                if text in s:
                    return s
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                fail(f"never printed {text!r}; printed: {self.seen}")

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_exit(self):
        try:
            return self.proc.wait(timeout=GUARD)
        except subprocess.TimeoutExpired:
            fail("did not exit; printed: " + str(self.seen))


T = lambda kind, dev=None: f"spBv1.0/{GROUP}/{kind}/{NODE}" + (f"/{dev}" if dev else "")  # noqa: E731


# ---- cases

def case_tls():
    b = broker()
    # A client whose certificate no trusted CA signed is refused.
    rogue = mqtt.Client(client_id="rogue", clean_session=True, protocol=mqtt.MQTTv311)
    rogue.tls_set(ca_certs=CA[1], certfile=ROGUE_NODE[1], keyfile=ROGUE_NODE[0])
    result = {}
    rogue.on_connect = lambda c, u, f, rc: result.setdefault("rc", rc)
    try:
        rogue.connect("127.0.0.1", b.port)
        deadline = time.monotonic() + GUARD
        while "rc" not in result and time.monotonic() < deadline and rogue.loop(0.5) == 0:
            pass
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        result["error"] = str(e)
    check(result.get("rc") != 0, "a client with an untrusted certificate was accepted")
    # iogate with that certificate: a clear TLS failure, no birth.
    h = host(b)
    check(h.connected(), "the host did not connect")
    h.subscribe()
    g = gate(config([b.port], cert=ROGUE_NODE))
    g.wait_line(f"not connected: connection to mqtts://127.0.0.1:{b.port} lost")
    g.wait_line("alert unknown ca")
    g.proc.send_signal(signal.SIGTERM)
    check(g.wait_exit() == 0, "iogate did not stop cleanly")
    check(h.nothing_pending(), "a node with an untrusted certificate published")
    # A server whose certificate names another host is refused by iogate.
    other = broker(server=OTHER_NAME_SERVER)
    g = gate(config([other.port]))
    line = g.wait_line(f"mqtts://127.0.0.1:{other.port}")
    g.wait_line("certificate verify failed")
    g.proc.send_signal(signal.SIGTERM)
    g.wait_exit()
    check("Client plant1:node7" not in other.log_text() or "New client connected" not in other.log_text(),
          "iogate completed a connection to a server with the wrong name: " + line)
    # A key others may read, plain MQTT to a non-loopback address: refused at start.
    os.chmod(NODE_CERT[0], 0o644)
    r = subprocess.run([IOGATE, "--config", config([b.port]), "--check-config"], capture_output=True, text=True)
    os.chmod(NODE_CERT[0], 0o600)
    check(r.returncode == 2 and "chmod 0600" in r.stderr, f"readable key: {r.returncode} {r.stderr}")
    cfg = f"{TMP}/plain.toml"
    with open(cfg, "w") as f:
        f.write('group_id = "g"\n[mqtt]\nservers = ["mqtt://192.0.2.1:1883"]\nallow_plain_loopback = true\n')
    r = subprocess.run([IOGATE, "--config", cfg, "--check-config"], capture_output=True, text=True)
    check(r.returncode == 2 and "plain MQTT only to loopback" in r.stderr and "mqtt.servers" in r.stderr,
          f"plain MQTT off loopback: {r.returncode} {r.stderr}")
    r = subprocess.run([IOGATE, "--config", config([b.port], cert=HOST_CERT), "--check-config"],
                       capture_output=True, text=True)
    check(r.returncode == 2 and "is issued to 'scada' but edge_node_id is 'node7'" in r.stderr,
          f"another identity's certificate: {r.returncode} {r.stderr}")
    r = subprocess.run([IOGATE, "--config", config([b.port]), "--check-config"], capture_output=True, text=True)
    check(r.returncode == 0, f"a good configuration was refused: {r.stderr}")


def case_lifecycle():
    b, h = broker_and_host()
    cfg = config([b.port])
    g = gate(cfg)
    nb, raw, qos, retain = h.expect(T("NBIRTH"))
    check(nb.seq == 0 and nb.HasField("seq"), f"NBIRTH seq {nb.seq}")
    check(metric(nb, "bdSeq").long_value == 0, "first bdSeq is not 0")
    rb = metric(nb, "Node Control/Rebirth")
    check(rb.datatype == 11 and rb.HasField("boolean_value") and not rb.boolean_value, "Rebirth metric")
    check(qos == 0 and not retain, "NBIRTH QoS/retain")
    dr = subprocess.run(["protoc", "--decode_raw"], input=raw, capture_output=True, check=True).stdout.decode()
    check("3: 0" in dr and '1: "bdSeq"' in dr and '1: "Node Control/Rebirth"' in dr, "decode_raw:\n" + dr)
    # NCMD Rebirth: a new NBIRTH with the same bdSeq.
    h.publish(T("NCMD"), command("Node Control/Rebirth", True))
    nb2, _, _, _ = h.expect(T("NBIRTH"))
    check(nb2.seq == 0 and metric(nb2, "bdSeq").long_value == 0, "rebirth")
    # SIGTERM: NDEATH (QoS 1) from the node, then a clean DISCONNECT.
    g.proc.send_signal(signal.SIGTERM)
    nd, _, qos, _ = h.expect(T("NDEATH"))
    check(not nd.HasField("seq") and metric(nd, "bdSeq").long_value == 0, "NDEATH")
    check(qos == 1, "NDEATH QoS")
    check(g.wait_exit() == 0, "iogate exit status after SIGTERM")
    b.wait_log(f"Client {GROUP}:{NODE} disconnected.")
    check("closed its connection" not in b.log_text(), "no DISCONNECT was sent")
    # bdSeq grows across restarts; kill -9 gives the Will with the birth's bdSeq.
    g = gate(cfg)
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(metric(nb, "bdSeq").long_value == 1, "bdSeq after a restart")
    g.proc.kill()
    g.wait_exit()
    nd, _, qos, _ = h.expect(T("NDEATH"))
    check(metric(nd, "bdSeq").long_value == 1 and qos == 1, "Will NDEATH after kill -9")
    g = gate(cfg)
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(metric(nb, "bdSeq").long_value == 2, "bdSeq after kill -9 and a restart")
    # The broker goes away and comes back: a new CONNECT with the next bdSeq.
    port = b.port
    b.stop()
    g.wait_line(f"not connected: connection to mqtts://127.0.0.1:{port} lost")
    b = broker(port=port)
    h = host(b)
    check(h.connected(), "the host did not reconnect")
    h.subscribe()
    deadline = time.monotonic() + GUARD
    while True:  # NBIRTHs of connects made before the host subscribed are not seen
        h.publish(T("NCMD"), command("Node Control/Rebirth", True))
        try:
            t, p, _, _ = h.q.get(timeout=1)
        except queue.Empty:
            check(time.monotonic() < deadline, "no NBIRTH after the broker came back")
            continue
        if t == T("NBIRTH"):
            msg = pb.payload()
            msg.ParseFromString(p)
            check(metric(msg, "bdSeq").long_value >= 3, "bdSeq after a reconnect")
            break
    g.proc.send_signal(signal.SIGTERM)
    check(g.wait_exit() == 0, "exit status")


def case_device():
    b, h = broker_and_host()
    # No rate limit: the garbage below must not use up the good commands' allowance.
    g = gate(config([b.port], extra="[commands]\nenabled = true\nmax_per_second = 0\n"), PEER)
    nb, _, _, _ = h.expect(T("NBIRTH"))
    db, _, _, _ = h.expect(T("DBIRTH", "sim"))
    check(db.seq == 1, "DBIRTH seq")
    names = {m.name for m in db.metrics}
    check({"Lines/A0", "Lines/B0"} <= names, f"DBIRTH metrics {names}")
    for m in db.metrics:
        check(m.HasField("timestamp") and m.datatype == 11 and m.HasField("boolean_value"), f"incomplete {m}")
    g.send("edge A1 1")
    d, _, _, _ = h.expect(T("DDATA", "sim"))
    check(d.seq == 2 and metric(d, "Lines/A1").boolean_value, "DDATA of an edge")
    # A DCMD writes the output; a DDATA confirms it.
    h.publish(T("DCMD", "sim"), command("Lines/B0", True))
    g.wait_line("written B0 1")
    d, _, _, _ = h.expect(T("DDATA", "sim"))
    check(d.seq == 3 and metric(d, "Lines/B0").boolean_value, "DDATA confirming the write")
    # Not writable, then 1000 garbage payloads: nothing written, nothing sent, still alive.
    h.publish(T("DCMD", "sim"), command("Lines/A0", True))
    rnd = __import__("random").Random(5)
    for i in range(1000):
        h.c.publish(T("DCMD", "sim"), bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 40))))
    h.publish(T("DCMD", "sim"), command("Lines/B1", True))
    g.wait_line("written B1 1")
    d, _, _, _ = h.expect(T("DDATA", "sim"))
    check(metric(d, "Lines/B1").boolean_value and d.seq == 4, f"after garbage: seq {d.seq}")
    check(not any("written A0" in s for s in g.seen), "an input was written")
    # seq wraps past 255 without a gap.
    g.send("burst 300")
    last = 4
    for i in range(300):
        d, _, _, _ = h.expect(T("DDATA", "sim"))
        check(d.seq == (last + 1) % 256, f"seq {d.seq} after {last}")
        last = d.seq
    g.send("stop")
    nd, _, _, _ = h.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "peer node exit")


def case_primary_host():
    def state(client, online, ts):
        client.publish("spBv1.0/STATE/scada", json.dumps({"online": online, "timestamp": ts}), qos=1, retain=True)

    now = int(time.time() * 1000)
    b, h = broker_and_host(subscribe=False)
    b2, h2 = broker_and_host(subscribe=False)
    state(h, False, now)
    state(h2, True, now)  # the host is online on the second broker only
    h.subscribe(f"spBv1.0/{GROUP}/#")
    h2.subscribe(f"spBv1.0/{GROUP}/#")
    g = gate(config([b.port, b2.port], extra='[primary_host]\nid = "scada"\n'), PEER)
    g.wait_line("waiting for primary host scada")
    check(h.nothing_pending(), "births before the primary host is online")
    state(h, True, now + 1)
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(metric(nb, "bdSeq").long_value == 0, "first bdSeq")
    h.expect(T("DBIRTH", "sim"))
    # The host goes offline here: NDEATH, and the node moves to the next server.
    state(h, False, now + 2)
    nd, _, _, _ = h.expect(T("NDEATH"))
    check(metric(nd, "bdSeq").long_value == 0, "NDEATH's bdSeq")
    b.wait_log(f"Client {GROUP}:{NODE} disconnected.")
    nb, _, _, _ = h2.expect(T("NBIRTH"))
    check(metric(nb, "bdSeq").long_value == 1, "bdSeq on the next server")
    h2.expect(T("DBIRTH", "sim"))
    check(h.nothing_pending(), "the node still published on the first server")
    g.send("stop")
    h2.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "peer node exit")


def case_server_list():
    b, h = broker_and_host()
    dead = free_port()  # nothing listens there
    g = gate(config([dead, b.port]))
    g.wait_line(f"mqtts://127.0.0.1:{dead}")
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(metric(nb, "bdSeq").long_value == 1, "the failed CONNECT attempt did not count a bdSeq")
    g.proc.send_signal(signal.SIGTERM)
    check(g.wait_exit() == 0, "exit status")


def case_cli():
    r = subprocess.run([IOGATE, "--bogus"], capture_output=True, text=True)
    check(r.returncode == 2 and "unknown argument '--bogus'" in r.stderr and "usage:" in r.stderr,
          f"unknown argument: {r.returncode} {r.stderr}")
    r = subprocess.run([IOGATE, "--version"], capture_output=True, text=True)
    check(r.returncode == 0 and r.stdout.startswith("iogate "), f"--version: {r.stdout}")
    r = subprocess.run([IOGATE, "--config", f"{TMP}/missing.toml"], capture_output=True, text=True)
    check(r.returncode == 2 and f"{TMP}/missing.toml: cannot read" in r.stderr, f"missing config: {r.stderr}")
    bad = f"{TMP}/bad.toml"
    with open(bad, "w") as f:
        f.write('group_id = "g"\n[mqtt]\nservers = ["mqtts://b"]\nca_file = "c"\ncert_file = "d"\nkey_file = "e"\n'
                "keepalive = \"long\"\n")
    r = subprocess.run([IOGATE, "--config", bad], capture_output=True, text=True)
    check(r.returncode == 2 and f"{bad}:7: mqtt.keepalive: expected an integer 5..65535, found a string" in r.stderr,
          f"bad value: {r.stderr}")


def case_acl():
    # The shipped example ACL: only the host identity may command a node.
    b, h = broker_and_host(acl=os.path.join(os.path.dirname(PROTO), "mosquitto-iogate.acl"))
    g = gate(config([b.port], extra="[commands]\nenabled = true\n"), PEER)
    h.expect(T("NBIRTH"))
    h.expect(T("DBIRTH", "sim"))
    intruder = host(b, cert=INTRUDER_CERT, client_id="intruder")
    check(intruder.connected(), "the intruder's certificate is valid and connects")
    intruder.publish(T("DCMD", "sim"), command("Lines/B0", True), qos=1)  # acknowledged, then dropped
    h.publish(T("DCMD", "sim"), command("Lines/B1", True), qos=1)
    g.wait_line("written B1 1")
    check(not any("written B0" in s for s in g.seen), "a command from another identity reached the node")
    d, _, _, _ = h.expect(T("DDATA", "sim"))
    check(metric(d, "Lines/B1").boolean_value, "DDATA confirming the host's command")
    g.send("stop")
    h.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "peer node exit")


def case_store_forward():
    # Births wait for the host, so that the host sees them after the broker returns.
    b, h = broker_and_host(subscribe=False)
    state = "spBv1.0/STATE/scada"

    def host_online(client, online):
        client.publish(state, json.dumps({"online": online, "timestamp": int(time.time() * 1000)}), qos=1,
                       retain=True)

    host_online(h, True)
    h.subscribe(f"spBv1.0/{GROUP}/#")
    g = gate(config([b.port], extra='[primary_host]\nid = "scada"\n', journal_capacity=30), PEER)
    h.expect(T("NBIRTH"))
    h.expect(T("DBIRTH", "sim"))
    port = b.port
    b.stop()
    g.wait_line(f"not connected: connection to mqtts://127.0.0.1:{port} lost")
    # 50 edges while the broker is away: the journal keeps the newest 30.
    made = []
    for i in range(50):
        g.send(f"edge A2 {i % 2}")
        made.append(i % 2 == 1)
    g.send("stop")  # the peer node leaves; its journal stays on disk
    check(g.wait_exit() == 0, "peer node exit")
    # The first host would reconnect to the new broker by itself and, with the
    # same client ID, take turns with the second one kicking each other out.
    h.close()
    b = broker(port=port)
    h = host(b)
    check(h.connected(), "the host did not connect again")
    host_online(h, True)
    h.subscribe(f"spBv1.0/{GROUP}/#")
    g = gate(config([b.port], extra='[primary_host]\nid = "scada"\n', journal_capacity=30), PEER)
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(metric(nb, "Store/Dropped").long_value == 20, f"overflow count {metric(nb, 'Store/Dropped')}")
    db, _, _, _ = h.expect(T("DBIRTH", "sim"))
    check(db.seq == 1, "DBIRTH right after NBIRTH")
    got = []
    last_ts = 0
    seq = 1
    while len(got) < 30:
        d, _, _, _ = h.expect(T("DDATA", "sim"))
        check(d.seq == (seq + 1) % 256, f"seq {d.seq} after {seq}")
        seq = d.seq
        for m in d.metrics:
            check(m.is_historical and m.name == "Lines/A2", f"not historical: {m}")
            check(m.timestamp >= last_ts, "historical data out of order")
            last_ts = m.timestamp
            got.append(m.boolean_value)
    check(got == made[20:], f"journal replay {got} != {made[20:]}")
    check(last_ts < int(time.time() * 1000), "timestamps are the original ones")
    g.send("stop")
    h.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "peer node exit")


# ---- in the test VM, on iocard.ko's virtual cards (tests/vm runs this case)

class sim_card:
    """A virtual COS32 card (kmod/ABI.md: new_sim, sim_inputs, sim_outputs):
    IN0..IN31 are offsets 0..31, OUT0..OUT31 offsets 32..63."""

    def __init__(self, number):
        self.name = f"iocard{number}"
        self.number = number
        self.create()

    def sys(self, attr):
        return f"/sys/class/iocard/{self.name}/{attr}"

    def create(self):
        with open("/sys/class/iocard/new_sim", "w") as f:
            f.write(f"cos32 {self.number}")
        run("udevadm", "settle", "--timeout=30")
        with open(self.sys("gpiochip")) as f:
            self.chip = f.read().strip()

    def delete(self):
        with open("/sys/class/iocard/delete_sim", "w") as f:
            f.write(self.name)

    def inputs(self, mask):
        with open(self.sys("sim_inputs"), "w") as f:
            f.write(f"{mask:x}")

    def outputs(self):
        with open(self.sys("sim_outputs")) as f:
            return int(f.read().strip().replace(",", ""), 16)


def prop(m, key):
    ps = m.properties
    check(key in ps.keys, f"{m.name}: no property {key}: {m}")
    v = ps.values[list(ps.keys).index(key)]
    return v.long_value if v.HasField("long_value") else v.int_value


def step(text):
    print(f"{CASE}: {text}", flush=True)


def case_vm_cards():
    gate_test.vm_guest_ready()
    step("two virtual cos32 cards")
    a, b = sim_card(160), sim_card(161)
    # Another process holds IN5 of card A: iogate publishes it as BAD, never takes it.
    holder = subprocess.Popen(["gpiomon", "-c", a.chip, "IN5"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    CHILDREN.append(holder)
    deadline = time.monotonic() + GUARD
    while "consumer=" not in run("gpioinfo", "-c", a.chip, "IN5").stdout.decode():
        if holder.poll() is not None:
            fail("gpiomon exited: " + holder.stderr.read())
        check(time.monotonic() < deadline, "gpiomon does not hold IN5")
        time.sleep(0.05)
    step("mosquitto, the host, iogate")
    b_, h = broker_and_host()
    cards = ("[commands]\nenabled = true\nmax_per_second = 0\n"
             f'[[card]]\ncard = "{a.name}"\ndevice_id = "cardA"\nlines = ["IN0", "IN1", "IN5"]\n'
             'writable = ["OUT0", "OUT1"]\n'
             f'[[card]]\ncard = "{b.name}"\ndevice_id = "cardB"\nlines = ["IN0"]\n')
    cfg = config([b_.port], extra=cards)
    g = gate(cfg)
    # Births: NBIRTH (seq 0), then a DBIRTH per card, every metric complete.
    nb, _, _, _ = h.expect(T("NBIRTH"))
    check(nb.seq == 0 and nb.HasField("seq"), "NBIRTH seq")
    bdseq = metric(nb, "bdSeq").long_value
    check(not metric(nb, "Node Control/Rebirth").boolean_value, "Rebirth metric")
    births = {}
    for seq in (1, 2):
        t, p, qos, retain = h.next("DBIRTH")
        check(t in (T("DBIRTH", "cardA"), T("DBIRTH", "cardB")), f"expected a DBIRTH, got {t}")
        check(qos == 0 and not retain, "DBIRTH QoS/retain")
        msg = pb.payload()
        msg.ParseFromString(p)
        check(msg.seq == seq, f"DBIRTH seq {msg.seq}, expected {seq}")
        births[t.rsplit("/", 1)[1]] = msg
    da = births["cardA"]
    names = sorted(m.name for m in da.metrics)
    check(names == ["Lines/IN0", "Lines/IN1", "Lines/IN5", "Lines/OUT0", "Lines/OUT1", "Lost events"],
          f"cardA's DBIRTH: {names}")
    for m in da.metrics:
        check(m.HasField("timestamp") and m.HasField("datatype"), f"incomplete {m}")
        check(m.is_null or m.WhichOneof("value") is not None, f"no value: {m}")
    held = metric(da, "Lines/IN5")
    check(held.is_null and held.datatype == 11 and prop(held, "Quality") == 0, f"held line: {held}")
    check(prop(metric(da, "Lines/IN0"), "Quality") == 192, "a free line's Quality")
    check(not metric(da, "Lines/IN0").boolean_value, "IN0 before any edge")
    g.wait_line("line IN5 is held by another process")
    step("edges")
    # Edges from sim_inputs: each one a metric with the kernel's seqno, gap-free.
    # Each change waits for its DDATA: gpiolib names an edge after the level
    # it reads when its irq thread runs, so a change made before that read
    # would give the earlier event the later level (kmod/ABI.md, "lost").
    n_edges = 100
    seen = []
    seq = 2
    for i in range(n_edges):
        a.inputs((i + 1) % 2)  # IN0 rises, falls, ...
        while len(seen) < i + 1:
            d, _, _, _ = h.expect(T("DDATA", "cardA"))
            check(d.seq == (seq + 1) % 256, f"DDATA seq {d.seq} after {seq}")
            seq = d.seq
            for m in d.metrics:
                check(m.name == "Lines/IN0", f"an edge on IN0 only: {m}")
                check(abs(m.timestamp - time.time() * 1000) < 60000, f"timestamp {m.timestamp} is not UTC ms")
                check(prop(m, "timestamp_ns") > 0, "timestamp_ns")
                seen.append((prop(m, "seqno"), prop(m, "line_seqno"), m.boolean_value))
    check([s[0] for s in seen] == list(range(seen[0][0], seen[0][0] + n_edges)), f"seqno with gaps: {seen}")
    check([s[1] for s in seen] == list(range(seen[0][1], seen[0][1] + n_edges)), f"line_seqno with gaps: {seen}")
    check([s[2] for s in seen] == [(i + 1) % 2 == 1 for i in range(n_edges)], f"levels: {seen}")
    step("commands")
    # An allowed DCMD drives OUT1 (offset 33); a DDATA confirms it.
    h.publish(T("DCMD", "cardA"), command("Lines/OUT1", True))
    d, _, _, _ = h.expect(T("DDATA", "cardA"))
    check(d.seq == (seq + 1) % 256 and metric(d, "Lines/OUT1").boolean_value, f"confirmation: {d}")
    seq = d.seq
    check(a.outputs() >> 32 == 0b10, f"sim_outputs {a.outputs():x}")
    # A command to an input: refused, nothing driven.
    h.publish(T("DCMD", "cardA"), command("Lines/IN1", True))
    h.publish(T("DCMD", "cardA"), command("Lines/OUT1", False))
    d, _, _, _ = h.expect(T("DDATA", "cardA"))
    check(metric(d, "Lines/OUT1").boolean_value is False and len(d.metrics) == 1, f"after a refused write: {d}")
    seq = d.seq
    check(a.outputs() >> 32 == 0, f"sim_outputs {a.outputs():x}")
    step("hotplug")
    # Hotplug: delete_sim gives DDEATH, new_sim the card's DBIRTH again.
    b.delete()
    dd, _, _, _ = h.expect(T("DDEATH", "cardB"))
    check(dd.seq == (seq + 1) % 256, f"DDEATH seq {dd.seq}")
    b.create()
    db, _, _, _ = h.expect(T("DBIRTH", "cardB"))
    check(db.seq == (seq + 2) % 256 and metric(db, "Lines/IN0").HasField("boolean_value"), f"DBIRTH again: {db}")
    b.inputs(1)
    d, _, _, _ = h.expect(T("DDATA", "cardB"))
    check(metric(d, "Lines/IN0").boolean_value, "an edge on the card that came back")
    step("kill -9")
    # kill -9: the broker sends the Will, NDEATH with the NBIRTH's bdSeq.
    g.proc.kill()
    g.wait_exit()
    nd, _, qos, _ = h.expect(T("NDEATH"))
    check(metric(nd, "bdSeq").long_value == bdseq and qos == 1 and not nd.HasField("seq"), f"NDEATH {nd}")
    holder.kill()
    holder.wait()
    a.delete()
    b.delete()


def pci_uart():
    """A ttyS of QEMU's pci-serial-4x (8250_pci), not the ISA console port."""
    for name in sorted(os.listdir("/sys/class/tty")):
        dev = os.path.realpath(f"/sys/class/tty/{name}/device")
        if name.startswith("ttyS") and "/pci" in dev and os.path.exists(f"/sys/class/tty/{name}/device/driver"):
            return "/dev/" + name
    fail("no ttyS of a PCI UART (pci-serial-4x)")


def modem_ddata(h):
    """The uart's DDATA metrics until both Modem/RTS and Modem/CTS came: {name: level}."""
    seen = {}
    while "Modem/RTS" not in seen or "Modem/CTS" not in seen:
        d, _, _, _ = h.expect(T("DDATA", "uart"))
        for m in d.metrics:
            seen[m.name] = m.boolean_value
    return seen


def case_vm_serial():
    import fcntl
    import struct
    import termios
    run("ip", "link", "set", "lo", "up")
    tty = pci_uart()
    step(f"{tty} in modem loopback, held open as its data stream's owner would")
    # TIOCM_LOOP sets the 8250's MCR loopback bit: RTS drives CTS, DTR drives DSR.
    owner = os.open(tty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    attrs = termios.tcgetattr(owner)
    fcntl.ioctl(owner, termios.TIOCMSET, struct.pack("i", 0x8000))  # TIOCM_LOOP; DTR and RTS off
    # The port as a card's port, CARD@N, as libio names it (iotool list): the
    # same tty, which the loopback below shows.
    iotool = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(IOGATE))), "tools", "iotool")
    cards = json.loads(run(iotool, "list", "--json").stdout)["cards"]
    port = [f"{c['name']}@{s['index']}" for c in cards for s in c["serial_ports"] if s["path"] == tty]
    check(len(port) == 1, f"{tty} is not one card's port in iotool list: {cards}")
    port = port[0]
    step(f"iogate configured with port = \"{port}\"")
    b_, h = broker_and_host()
    extra = ("[commands]\nenabled = true\nmax_per_second = 0\n"
             f'[[serial_port]]\nport = "{port}"\ndevice_id = "uart"\npoll_ms = 1000\nwritable = ["RTS"]\n')
    g = gate(config([b_.port], extra=extra))
    h.expect(T("NBIRTH"))
    db, _, _, _ = h.expect(T("DBIRTH", "uart"))
    g.wait_line(f"serial port {port} published as device uart")
    names = sorted(m.name for m in db.metrics)
    check(names == sorted(["Modem/CTS", "Modem/DSR", "Modem/DCD", "Modem/RI", "Modem/DTR", "Modem/RTS",
                           "Errors/Frame", "Errors/Parity", "Errors/Overrun", "Errors/Break",
                           "Counters/Rx", "Counters/Tx"]), f"DBIRTH: {names}")
    # The kernel raised DTR and RTS at iogate's open (iogate(8)); the
    # loopback makes CTS and DSR follow them.
    rts = metric(db, "Modem/RTS").boolean_value
    check(metric(db, "Modem/CTS").boolean_value == rts and
          metric(db, "Modem/DSR").boolean_value == metric(db, "Modem/DTR").boolean_value,
          f"CTS follows RTS and DSR follows DTR in the birth: {db}")
    step(f"DCMD Modem/RTS {not rts}: a DDATA confirms RTS, and CTS follows through the loopback")
    h.publish(T("DCMD", "uart"), command("Modem/RTS", not rts))
    seen = modem_ddata(h)
    check(seen == {"Modem/RTS": not rts, "Modem/CTS": not rts}, f"DDATA after the command: {seen}")
    step("a command to an input is refused; the port's settings are the owner's")
    h.publish(T("DCMD", "uart"), command("Modem/CTS", rts))
    h.publish(T("DCMD", "uart"), command("Modem/RTS", rts))
    seen = modem_ddata(h)
    check(seen == {"Modem/RTS": rts, "Modem/CTS": rts}, f"DDATA after RTS back: {seen}")
    check(termios.tcgetattr(owner) == attrs, "iogate changed the owner's termios")
    g.proc.send_signal(signal.SIGTERM)
    h.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "iogate exit status")
    check(termios.tcgetattr(owner) == attrs, "iogate's close changed the owner's termios")
    os.close(owner)


class seaio:
    """seaio_sim.py --tcp serving SeaI/O modules on 127.0.0.1; its commands on stdin."""

    def __init__(self, *modules):
        sim = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seaio_sim.py")
        self.proc = subprocess.Popen([sim, "--tcp", *modules], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        CHILDREN.append(self.proc)
        words = self.proc.stdout.readline().split()
        check(words[:1] == ["ready"], f"seaio_sim.py did not start: {words}")
        self.port = int(words[1])

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        check(answer and not answer.startswith("error"), f"seaio_sim.py {line!r}: {answer!r}")
        return answer


def case_modbus_device():
    sim = seaio("1:410", "2:430")
    sim.cmd("di 1 5 1")  # before iogate starts: the birth must show it
    uri = f"modbus-tcp://127.0.0.1:{sim.port}?timeout=200&retries=0"
    # The 430 by its name in libio's configuration (LIBIO_CONFIG_DIR stands for /etc/libio).
    os.makedirs(f"{TMP}/libio/modbus.d")
    with open(f"{TMP}/libio/modbus.d/site.conf", "w") as f:
        f.write(f"[rack2]\nuri = {uri}&unit=2\nmodel = 430\npoll = 20ms\n")
    os.environ["LIBIO_CONFIG_DIR"] = f"{TMP}/libio"
    modules = (f'[[modbus_module]]\nmodule = "{uri}&unit=1&model=410"\ndevice_id = "rack1"\npoll_ms = 20\n'
               'writable = ["DO0", "DO3"]\n'
               '[[modbus_module]]\nmodule = "rack2"\n')
    # Refused configurations name the key and what is allowed.
    for bad, text in ((f'[[modbus_module]]\nmodule = "{uri}&unit=1"\ndevice_id = "x"\n',
                       "modbus_module[0].module: '" + uri + "&unit=1' names no model; add model=(410"),
                      ('[[modbus_module]]\nmodule = "rack9"\n',
                       f"modbus_module[0].module: 'rack9' is not a module configured in {TMP}/libio/modbus.d "
                       "(it configures rack2)"),
                      ('[commands]\nenabled = true\n[[modbus_module]]\nmodule = "rack2"\nwritable = ["DO0"]\n',
                       "modbus_module[0].writable: 'DO0' is not an output of model 430, which has none"),
                      ('[[modbus_module]]\nmodule = "rack2"\npoll_ms = 1\n',
                       "modbus_module[0].poll_ms: 1 is out of range; allowed: 10..60000")):
        r = subprocess.run([IOGATE, "--config", config([1883], extra=bad), "--check-config"],
                           capture_output=True, text=True)
        check(r.returncode == 2 and text in r.stderr, f"bad [[modbus_module]]: {r.returncode} {r.stderr}")

    b, h = broker_and_host()
    g = gate(config([b.port], extra="[commands]\nenabled = true\nmax_per_second = 0\n" + modules))
    h.expect(T("NBIRTH"))
    births = {}
    for _ in range(2):
        t, p, _, _ = h.next("the modules' DBIRTHs")
        check(t in (T("DBIRTH", "rack1"), T("DBIRTH", "rack2")), f"expected a module's DBIRTH, got {t}")
        births[t.rsplit("/", 1)[1]] = pb.payload.FromString(p)
    step("births")
    db = births["rack1"]
    names = [m.name for m in db.metrics]
    want = [f"Lines/DI{i}" for i in range(16)] + [f"Lines/DO{i}" for i in range(16)] + ["Ports/DI", "Lost events"]
    check(names == want, f"rack1 DBIRTH metrics {names}")
    for m in db.metrics[:32]:
        check(m.datatype == 11 and m.boolean_value == (m.name == "Lines/DI5"), f"rack1 DBIRTH {m}")
        check(prop(m, "Quality") == 192, f"Quality of {m.name}")
    check(metric(db, "Ports/DI").datatype == 8 and metric(db, "Ports/DI").long_value == 1 << 5, "rack1 Ports/DI")
    check(metric(db, "Lost events").datatype == 8 and metric(db, "Lost events").long_value == 0, "Lost events")
    names = [m.name for m in births["rack2"].metrics]
    check(names == [f"Lines/DI{i}" for i in range(32)] + ["Ports/DI", "Lost events"], f"rack2 DBIRTH {names}")
    g.wait_line(f"modbus module modbus-tcp://127.0.0.1:{sim.port}?unit=2&model=430&timeout=200&retries=0 "
                "published as device rack2")

    step("edges")
    t0 = time.monotonic_ns()
    sim.cmd("di 1 2 1")
    d, _, _, _ = h.expect(T("DDATA", "rack1"))
    t1 = time.monotonic_ns()
    m = metric(d, "Lines/DI2")
    check(m.boolean_value and prop(m, "line_seqno") == 1 and prop(m, "seqno") >= 1, f"edge {m}")
    check(t0 <= prop(m, "timestamp_ns") <= t1, f"the edge's poll time {prop(m, 'timestamp_ns')} not in [{t0}, {t1}]")
    check(abs(m.timestamp - time.time() * 1000) < 10000, f"metric timestamp {m.timestamp}")
    check(metric(d, "Ports/DI").long_value == (1 << 5) | (1 << 2), f"Ports/DI after the edge: {d}")
    sim.cmd("di 2 31 1")
    d, _, _, _ = h.expect(T("DDATA", "rack2"))
    check(metric(d, "Lines/DI31").boolean_value and metric(d, "Ports/DI").long_value == 1 << 31, f"rack2 {d}")

    step("commands")
    h.publish(T("DCMD", "rack1"), command("Lines/DO3", True))
    d, _, _, _ = h.expect(T("DDATA", "rack1"))
    check([m.name for m in d.metrics] == ["Lines/DO3"] and d.metrics[0].boolean_value, f"confirmation {d}")
    check(sim.cmd("do 1") == "do 0x8", "the module's outputs after DO3")
    # Not writable (an output not listed, an input, a port): refused with the cards' reasons.
    for name in ("Lines/DO1", "Lines/DI0"):
        h.publish(T("DCMD", "rack1"), command(name, True))
        g.wait_line(f"DCMD rack1 '{name}' refused: not writable")
    h.publish(T("DCMD", "rack2"), command("Lines/DO0", True))
    g.wait_line("DCMD rack2 'Lines/DO0' refused: no such metric")
    h.publish(T("DCMD", "rack1"), command("Lines/DO0", True))
    d, _, _, _ = h.expect(T("DDATA", "rack1"))
    check([m.name for m in d.metrics] == ["Lines/DO0"] and d.metrics[0].boolean_value, f"confirmation {d}")
    check(sim.cmd("do 1") == "do 0x9", "the module's outputs after DO0")

    step("silent and back")
    sim.cmd("fault 1 silent")
    dd, _, _, _ = h.expect(T("DDEATH", "rack1"))
    g.wait_line("modbus module rack1: no answer (")
    # The other module on the same connection is still published and polled.
    sim.cmd("di 2 0 1")
    d, _, _, _ = h.expect(T("DDATA", "rack2"))
    check(metric(d, "Lines/DI0").boolean_value, f"rack2 while rack1 is silent: {d}")
    h.publish(T("DCMD", "rack1"), command("Lines/DO0", False))  # a device that is gone: refused
    g.wait_line("DCMD for rack1 refused: no such device")
    sim.cmd("di 1 7 1")
    sim.cmd("fault 1 none")
    db, _, _, _ = h.expect(T("DBIRTH", "rack1"))
    levels = {m.name: m.boolean_value for m in db.metrics if m.name.startswith("Lines/")}
    check({n for n, v in levels.items() if v} == {"Lines/DI2", "Lines/DI5", "Lines/DI7", "Lines/DO0", "Lines/DO3"},
          f"DBIRTH after the module came back: {db}")
    check(sim.cmd("do 1") == "do 0x9", "a command for the gone device was written")
    sim.cmd("di 1 7 0")
    d, _, _, _ = h.expect(T("DDATA", "rack1"))
    m = metric(d, "Lines/DI7")
    check(not m.boolean_value and prop(m, "line_seqno") == 2, f"an edge after the module came back: {d}")
    g.proc.send_signal(signal.SIGTERM)
    h.expect(T("NDEATH"))
    check(g.wait_exit() == 0, "iogate exit status")


finish({"cli": case_cli, "store_forward": case_store_forward, "acl": case_acl, "tls": case_tls,
        "lifecycle": case_lifecycle, "device": case_device, "primary_host": case_primary_host,
        "server_list": case_server_list, "modbus_device": case_modbus_device, "vm_cards": case_vm_cards,
        "vm_serial": case_vm_serial}[CASE])
print(f"ok {CASE}")
