#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""iogate measured in the test VM, as root, with iocard.ko's virtual cards:

    gate_bench.py BUILD OUT.json [--short]

mosquitto on 127.0.0.1 with mutual TLS (a throwaway CA), iogate publishing
three cos32 cards, and bench_gate (bench/gate_bench.cpp) as the subscriber:
- latency: an edge from the kernel's timestamp to the subscriber's receipt,
  against a message published by bench_gate itself on the same broker
  (the baseline), interleaved in one run;
- rate: IN0 toggled at rising rates; delivered, reported lost and neither;
- memory: iogate's resident set (VmRSS, VmHWM) with the three cards, after
  the two above;
- fleet: FLEET gateways on the one broker, each with its own certificate and
  card; the time until every birth is in, then until 10 edges of each are,
  every edge checked by seqno; their resident sets.
--short runs each part briefly (tests/vm/bench_smoke_test.cpp): the
numbers then mean nothing. Exit status 1 when a part did not complete."""

import json
import os
import queue
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "native"))

import paho.mqtt.client as mqtt  # noqa: E402

import gate_test  # noqa: E402
from gate_test import CHILDREN, GUARD, check, fail, finish, scratch  # noqa: E402

BUILD, OUT = sys.argv[1], sys.argv[2]
SHORT = "--short" in sys.argv[3:]
IOGATE = os.path.join(BUILD, "iogate", "iogate")
BENCH_GATE = os.path.join(BUILD, "bench", "bench_gate")
PROTO = os.path.join(HERE, "..", "iogate", "sparkplug_b.proto")
TMP = scratch("gate_bench_", "certificates, configurations and logs")
GROUP = "bench"
FLEET = 2 if SHORT else 20
LATENCY_ROUNDS = 20 if SHORT else 2000
LATENCY_RATE = 100
RATES = [200] if SHORT else [200, 500, 1000, 2000, 5000, 10000]
RATE_SECONDS = 0.5 if SHORT else 3
FLEET_EDGES = 3 if SHORT else 10

subprocess.run(["protoc", "-I", os.path.dirname(PROTO), "--python_out", TMP, PROTO], check=True)
sys.path.insert(0, TMP)
import sparkplug_b_pb2 as pb  # noqa: E402


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True)


def sysfs(path, value=None):
    if value is None:
        with open(path) as f:
            return f.read().strip()
    with open(path, "w") as f:
        f.write(value)


def new_card(number):
    sysfs("/sys/class/iocard/new_sim", f"cos32 {number}")
    run("udevadm", "settle", "--timeout=30")
    return f"iocard{number}"


def memory_kib(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0])
    return out


class host:
    """A paho-mqtt subscriber to spBv1.0/GROUP/#, decoding every payload."""

    def __init__(self, port, cert):
        self.q = queue.Queue()
        self.c = mqtt.Client(client_id="bench-host", clean_session=True, protocol=mqtt.MQTTv311)
        self.c.tls_set(ca_certs=CA[1], certfile=cert[1], keyfile=cert[0])
        subscribed = queue.Queue()
        self.c.on_subscribe = lambda c, u, mid, q: subscribed.put(mid)
        self.c.on_message = self._message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe(f"spBv1.0/{GROUP}/#")
        try:
            subscribed.get(timeout=GUARD)
        except queue.Empty:
            fail("the host's subscription was not acknowledged")

    def _message(self, c, u, msg):
        p = pb.payload()
        p.ParseFromString(msg.payload)
        self.q.put((time.monotonic(), msg.topic, p))

    def next(self, timeout=GUARD):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def config(node, cert, cards, port):
    path = f"{TMP}/{node}.toml"
    with open(path, "w") as f:
        f.write(f'group_id = "{GROUP}"\nedge_node_id = "{node}"\nstate_file = "{TMP}/{node}.state"\n'
                f'[mqtt]\nservers = ["mqtts://127.0.0.1:{port}"]\nca_file = "{CA[1]}"\n'
                f'cert_file = "{cert[1]}"\nkey_file = "{cert[0]}"\n'
                f'[store]\njournal_file = "{TMP}/{node}.journal"\n')
        for card, device in cards:
            f.write(f'[[card]]\ncard = "{card}"\ndevice_id = "{device}"\n'
                    'lines = ["IN0", "IN1", "IN2", "IN3", "IN4", "IN5", "IN6", "IN7"]\n')
    return path


def start_gate(node, cert, cards, port):
    log = open(f"{TMP}/{node}.log", "w")
    p = subprocess.Popen([IOGATE, "--config", config(node, cert, cards, port)], stdout=log, stderr=log)
    CHILDREN.append(p)
    return p


def wait_births(h, nodes_devices):
    """Until every NBIRTH and DBIRTH of nodes_devices ({node: {device}}) is in;
    returns the monotonic time of the last."""
    want = {f"spBv1.0/{GROUP}/NBIRTH/{n}" for n in nodes_devices}
    want |= {f"spBv1.0/{GROUP}/DBIRTH/{n}/{d}" for n, ds in nodes_devices.items() for d in ds}
    last = time.monotonic()
    deadline = last + GUARD * 4
    while want:
        m = h.next(max(0.1, deadline - time.monotonic()))
        check(m is not None, f"births never came: {sorted(want)}")
        want.discard(m[1])
        last = m[0]
    return last


def bench_gate(mode, node, device, card, port, *args):
    cmd = [BENCH_GATE, "--port", str(port), "--ca", CA[1], "--cert", HOST[1], "--key", HOST[0],
           "--group", GROUP, "--node", node, "--device", device,
           "--inputs", f"/sys/class/iocard/{card}/sim_inputs", mode, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    print(r.stderr, end="", flush=True)
    check(r.returncode == 0, f"{' '.join(cmd)}: status {r.returncode}\n{r.stdout}")
    return json.loads(r.stdout)


def main():
    gate_test.vm_guest_ready(f"max_sims={FLEET + 8}")
    with open("/sys/module/iocard/parameters/max_sims") as f:
        max_sims = int(f.read())
    check(max_sims >= FLEET, f"iocard is loaded with max_sims={max_sims}; the fleet needs {FLEET} cards at once")
    results = {"short": SHORT}
    b = gate_test.mosquitto_tls(TMP, CA, SERVER)
    h = host(b.port, HOST)

    # One gateway, three cards.
    cards = [(new_card(170 + i), f"card{i}") for i in range(3)]
    node_cert = gate_test.make_cert(TMP, "node", "node0", CA)
    g = start_gate("node0", node_cert, cards, b.port)
    wait_births(h, {"node0": {d for _, d in cards}})
    h.close()
    print("gate_bench: latency", flush=True)
    results["latency"] = bench_gate("latency", "node0", "card0", cards[0][0], b.port,
                                    "--count", str(LATENCY_ROUNDS), "--rate", str(LATENCY_RATE))
    print("gate_bench: rate", flush=True)
    results["rate"] = bench_gate("rate", "node0", "card0", cards[0][0], b.port,
                                 "--rates", ",".join(str(r) for r in RATES), "--seconds", str(RATE_SECONDS))
    results["memory_3_cards"] = memory_kib(g.pid)
    results["memory_3_cards"]["broker"] = memory_kib(b.proc.pid)
    g.terminate()
    check(g.wait(timeout=GUARD) == 0, f"iogate exited with {g.returncode}")
    for card, _ in cards:
        sysfs("/sys/class/iocard/delete_sim", card)

    # The fleet: FLEET gateways, one card each.
    print(f"gate_bench: a fleet of {FLEET}", flush=True)
    h = host(b.port, HOST)
    fleet = []
    for i in range(FLEET):
        node = f"fleet{i:02d}"
        fleet.append((node, new_card(180 + i), gate_test.make_cert(TMP, node, node, CA)))
    t0 = time.monotonic()
    gates = [start_gate(node, cert, [(card, "card")], b.port) for node, card, cert in fleet]
    births_s = wait_births(h, {node: {"card"} for node, _, _ in fleet}) - t0
    t1 = time.monotonic()
    level = 0
    for _ in range(FLEET_EDGES):
        level ^= 1
        for _, card, _ in fleet:
            sysfs(f"/sys/class/iocard/{card}/sim_inputs", str(level))
        time.sleep(0.02)
    seqnos = {node: [] for node, _, _ in fleet}
    deadline = time.monotonic() + GUARD * 2
    last = t1
    while sum(len(s) for s in seqnos.values()) < FLEET * FLEET_EDGES:
        m = h.next(max(0.1, deadline - time.monotonic()))
        check(m is not None, "the fleet's edges never all came: " +
              ", ".join(f"{n}: {len(s)}" for n, s in seqnos.items()))
        at, topic, p = m
        parts = topic.split("/")
        if parts[2] != "DDATA":
            continue
        for metric in p.metrics:
            if metric.name == "Lines/IN0":
                keys = list(metric.properties.keys)
                seqnos[parts[3]].append(metric.properties.values[keys.index("seqno")].long_value)
        last = at
    for node, s in seqnos.items():
        check(s == list(range(s[0], s[0] + FLEET_EDGES)), f"{node}: seqno {s}")
    rss = [memory_kib(g.pid)["VmRSS"] for g in gates]
    results["fleet"] = {"gateways": FLEET, "edges_each": FLEET_EDGES, "births_s": round(births_s, 3),
                        "edges_s": round(last - t1, 3), "rss_kib_min": min(rss), "rss_kib_max": max(rss),
                        "broker_rss_kib": memory_kib(b.proc.pid)["VmRSS"]}
    h.close()
    for g in gates:
        g.terminate()
    for g in gates:
        check(g.wait(timeout=GUARD) == 0, f"a fleet gateway exited with {g.returncode}")
    for _, card, _ in fleet:
        sysfs("/sys/class/iocard/delete_sim", card)
    b.stop()
    with open(OUT, "w") as f:
        json.dump(results, f, indent=1)
    print(json.dumps({k: v for k, v in results.items() if k != "latency"}), flush=True)
    lat = results["latency"]
    for k in ("edge_to_subscriber", "mqtt_publish_to_subscriber"):
        print(k, {q: lat[k][q] for q in ("n", "min", "p50", "p90", "p99", "p999", "max")}, flush=True)
    print(f"gate_bench: edge to subscriber p50 {lat['edge_to_subscriber']['p50'] / 1000:.0f} us, "
          f"broker alone p50 {lat['mqtt_publish_to_subscriber']['p50'] / 1000:.0f} us; "
          f"fleet of {FLEET}: births in {births_s:.2f} s", flush=True)


CA = gate_test.make_ca(TMP, "ca")
SERVER = gate_test.make_cert(TMP, "server", "broker", CA, "IP:127.0.0.1")
HOST = gate_test.make_cert(TMP, "host", "scada", CA)
finish(main)
