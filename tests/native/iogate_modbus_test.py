#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""iogate's Modbus/TCP server against clients we did not write: mbpoll and
pymodbus (python3-pymodbus), plus raw sockets for the fuzzer, the
connection cap and the idle timeout. The server runs in modbus_peer_server
(the real configuration parser, framing and register map, with scripted
cards); all on 127.0.0.1.

    iogate_modbus_test.py IOGATE PEER CASE

CASE: config, daemon, mbpoll, pymodbus, writes, fuzz, limits. Waits are bounded
only as guards against a hang; every verdict comes from an answer, a log
line or an exit status."""

import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import queue

from gate_test import CHILDREN, GUARD, check, fail, finish, free_port, scratch

IOGATE, PEER, CASE = sys.argv[1:4]
TMP = scratch("iogate_modbus_test_", "configurations")


def config(text, name="iogate.toml"):
    path = f"{TMP}/{name}"
    with open(path, "w") as f:
        f.write(text)
    return path


UNITS = """
[[modbus_server.unit]]
id = 1
card = "dio0"
{w1}
[[modbus_server.unit]]
id = 2
card = "dio1"
"""


def server_config(writable="", extra=""):
    return config("[modbus_server]\nlisten = \"127.0.0.1\"\nport = 502\n" + extra +
                  UNITS.format(w1=writable))


class peer:
    """modbus_peer_server on a free port; its stdout lines are queued."""

    def __init__(self, cfg):
        self.p = subprocess.Popen([PEER, cfg, "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        CHILDREN.append(self.p)
        self.lines = queue.Queue()
        self.log = []
        threading.Thread(target=self._read, args=(self.p.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()
        first = self.expect("port ")
        self.port = int(first.split()[1])

    @staticmethod
    def _read(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))

    def _read_log(self):
        for line in self.p.stderr:
            self.log.append(line.rstrip("\n"))

    def expect(self, prefix):
        deadline = time.monotonic() + GUARD
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                fail(f"peer: no line starting with '{prefix}' (log: {self.log[-5:]})")
            if line.startswith(prefix):
                return line

    def wait_log(self, part):
        """Waits (bounded) for a log line containing part: stderr is read by its own thread."""
        deadline = time.monotonic() + GUARD
        while not any(part in l for l in self.log):
            if time.monotonic() > deadline:
                fail(f"no log line with '{part}' (log: {self.log[-5:]})")
            time.sleep(0.01)

    def send(self, cmd, answer="ok"):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        if answer:
            return self.expect(answer)
        return None

    def stats(self):
        line = self.send("stats", "stats ")
        return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

    def stop(self):
        self.p.stdin.write("stop\n")
        self.p.stdin.flush()
        check(self.p.wait(timeout=GUARD) == 0, "peer exit status")


def mbpoll(port, *args):
    r = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-0", "-1", "-o", "5", *args, "127.0.0.1"],
                       capture_output=True, text=True, timeout=GUARD)
    return r.returncode, r.stdout + r.stderr


def mbpoll_values(out):
    """mbpoll prints "[ADDR]: \tVALUE" per value."""
    vals = {}
    for line in out.splitlines():
        if line.startswith("[") and "]:" in line:
            a, v = line.split("]:")
            vals[int(a[1:])] = v.split()[0]  # "42435 (-23101)": the signed reading after
    return vals


def mbpoll_write(port, *args):
    """mbpoll with the values to write after the host."""
    cmd = ["mbpoll", "-m", "tcp", "-p", str(port), "-0", "-o", "5"]
    values = []
    for a in args:
        (values if a.startswith("=") else cmd).append(a.lstrip("="))
    r = subprocess.run(cmd + ["127.0.0.1"] + values, capture_output=True, text=True, timeout=GUARD)
    return r.returncode, r.stdout + r.stderr


def request(sock, unit, pdu, tid=1):
    sock.sendall(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
    head = recv_exact(sock, 7)
    t, proto, length, u = struct.unpack(">HHHB", head)
    check(t == tid and proto == 0 and u == unit, f"reply header {head.hex()}")
    return recv_exact(sock, length - 1)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            fail(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def closed_by_server(sock):
    """True once the server closed the connection (EOF or reset)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def good_read(port):
    """A full read of unit 1's 16 discrete inputs on a fresh connection."""
    with connect(port) as s:
        return request(s, 1, struct.pack(">BHH", 2, 0, 16))


# ---- cases

def case_config():
    def bad(text, words):
        r = subprocess.run([IOGATE, "--check-config", "--config", config(text, "bad.toml")],
                           capture_output=True, text=True, timeout=GUARD)
        check(r.returncode == 2, f"exit status {r.returncode} for {text!r}: {r.stderr}")
        for w in words:
            check(w in r.stderr, f"message {r.stderr!r} lacks {w!r}")

    r = subprocess.run([IOGATE, "--check-config", "--config", server_config()], capture_output=True, text=True,
                       timeout=GUARD)
    check(r.returncode == 0 and "Modbus/TCP server only" in r.stdout, f"a good config: {r.stdout} {r.stderr}")
    bad("[modbus_server]\nlisten = \"localhost\"\n" + UNITS.format(w1=""), ["modbus_server.listen", "not an IP"])
    bad("[modbus_server]\nport = 70000\n" + UNITS.format(w1=""), ["modbus_server.port", "1..65535"])
    bad("[modbus_server]\nmax_connections = 0\n" + UNITS.format(w1=""), ["max_connections", "1..1000"])
    bad("[modbus_server]\nidle_timeout_s = \"1m\"\n" + UNITS.format(w1=""), ["idle_timeout_s", "integer"])
    bad("[modbus_server]\n", ["modbus_server.unit", "missing"])
    bad("[modbus_server]\n[[modbus_server.unit]]\nid = 248\ncard = \"x\"\n", ["unit[0].id", "1..247"])
    bad("[modbus_server]\n[[modbus_server.unit]]\nid = 1\ncard = \"x\"\n[[modbus_server.unit]]\nid = 1\n"
        "card = \"y\"\n", ["configured twice"])
    bad("[modbus_server]\n[[modbus_server.unit]]\nid = 1\ncard = \"x\"\nwritable = \"B0\"\n",
        ["writable", "array of strings"])
    bad("[modbus_server]\nbogus = 1\n" + UNITS.format(w1=""), ["unknown key", "listen, port"])
    # Off when not configured: no [modbus_server] means no listening socket (the MQTT-only daemon).
    r = subprocess.run([PEER, config("group_id = \"g\"\n[mqtt]\nservers = [\"mqtt://127.0.0.1\"]\n"
                                     "allow_plain_loopback = true\n", "mqtt.toml")],
                       capture_output=True, text=True, timeout=GUARD)
    check(r.returncode == 1 and "no [modbus_server]" in r.stderr, f"off by default: {r.stderr}")


def listening_sockets(pid):
    """The TCP sockets in LISTEN state that process pid holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: TCP_LISTEN
                    found.append(cols[1])
    return found


def case_daemon():
    """The real daemon: off by default, and on with [modbus_server] (no card on this host: 0B)."""
    mqtt_only = config(f"group_id = \"g\"\nedge_node_id = \"n\"\nstate_file = \"{TMP}/state\"\n"
                       f"[mqtt]\nservers = [\"mqtt://127.0.0.1:{free_port()}\"]\nallow_plain_loopback = true\n"
                       "[store]\njournal_file = \"\"\n", "mqtt-only.toml")
    g = subprocess.Popen([IOGATE, "--config", mqtt_only], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    CHILDREN.append(g)
    for line in g.stderr:
        if "edge node g/n" in line:
            break
    check(g.poll() is None, "iogate with [mqtt] only did not start")
    check(listening_sockets(g.pid) == [], f"iogate without [modbus_server] listens: {listening_sockets(g.pid)}")
    g.terminate()
    g.wait(timeout=GUARD)

    port = free_port()
    cfg = config(f"[modbus_server]\nport = {port}\n[[modbus_server.unit]]\nid = 1\ncard = \"no-such-card\"\n",
                 "modbus-only.toml")
    g = subprocess.Popen([IOGATE, "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    CHILDREN.append(g)
    log = []
    for line in g.stderr:
        log.append(line)
        if "not present; served when it appears" in line:
            break
    check(any(f"Modbus/TCP server on 127.0.0.1 port {port}" in l and "no authentication" in l for l in log),
          f"startup log {log}")
    check(len(listening_sockets(g.pid)) == 1, "one listening socket")
    rc, out = mbpoll(port, "-a", "1", "-t", "1", "-r", "0", "-c", "1")
    check(rc != 0 and "Target device failed to respond" in out, f"unit 1 without its card (0B): {out}")
    rc, out = mbpoll(port, "-a", "2", "-t", "1", "-r", "0", "-c", "1")
    check(rc != 0 and "Gateway path unavailable" in out, f"unit 2, not configured (0A): {out}")
    g.terminate()
    check(g.wait(timeout=GUARD) == 0, "iogate exit status after SIGTERM")


def case_mbpoll():
    p = peer(server_config(writable='writable = ["B1", "C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", '
                                    '"C8", "C9", "C10", "C11", "C12", "C13", "C14", "C15"]'))
    p.send("inputs a5c3")
    rc, out = mbpoll(p.port, "-a", "1", "-t", "1", "-r", "0", "-c", "16")
    check(rc == 0, f"mbpoll discrete inputs: {out}")
    vals = mbpoll_values(out)
    want = {i: str((0xa5c3 >> i) & 1) for i in range(16)}
    check(vals == want, f"discrete inputs {vals}, wanted {want}")
    # Input registers: edges seen and lost (64-bit, high word first), then ports A, B, C.
    p.send("edges 70000 lost 3")
    rc, out = mbpoll(p.port, "-a", "1", "-t", "3", "-r", "0", "-c", "11")
    check(rc == 0, f"mbpoll input registers: {out}")
    vals = mbpoll_values(out)
    check(vals == {0: "0", 1: "0", 2: "1", 3: "4464", 4: "0", 5: "0", 6: "0", 7: "3", 8: str(0xa5c3), 9: "0",
                   10: "0"}, f"input registers {vals}")
    # A permitted coil write shows on the line; the coil reads back.
    rc, out = mbpoll_write(p.port, "-a", "1", "-t", "0", "-r", "1", "=1")
    check(rc == 0, f"mbpoll write coil 1: {out}")
    p.expect("written 1 B1 1")
    rc, out = mbpoll(p.port, "-a", "1", "-t", "0", "-r", "0", "-c", "8")
    check(mbpoll_values(out) == {i: "1" if i == 1 else "0" for i in range(8)}, f"coils {out}")
    # Holding register 1 (port C, 16 writable lines).
    rc, out = mbpoll_write(p.port, "-a", "1", "-t", "4", "-r", "1", "=4660")
    check(rc == 0, f"mbpoll write holding register 1: {out}")
    p.expect("written 1 C0 0")
    rc, out = mbpoll(p.port, "-a", "1", "-t", "4", "-r", "0", "-c", "2")
    check(mbpoll_values(out) == {0: "2", 1: "4660"}, f"holding registers {out}")
    # Refused: coil 0 (B0 is not writable), and unit 2 (nothing writable).
    rc, out = mbpoll_write(p.port, "-a", "1", "-t", "0", "-r", "0", "=1")
    check(rc != 0 and "Illegal data address" in out, f"a refused write: rc {rc}: {out}")
    rc, out = mbpoll_write(p.port, "-a", "2", "-t", "0", "-r", "1", "=1")
    check(rc != 0 and "Illegal data address" in out, f"a refused write on unit 2: rc {rc}: {out}")
    # A unit no card is configured for.
    rc, out = mbpoll(p.port, "-a", "9", "-t", "1", "-r", "0", "-c", "1")
    check(rc != 0, f"unit 9 answered: {out}")
    s = p.stats()
    check(s["refused_writes"] == 2, f"refused writes counted: {s}")
    p.stop()


def case_pymodbus():
    from pymodbus.client import ModbusTcpClient

    p = peer(server_config(writable='writable = ["B0", "B2", "B3"]'))
    p.send("inputs 8001")
    c = ModbusTcpClient("127.0.0.1", port=p.port, timeout=5)
    check(c.connect(), "pymodbus connect")
    r = c.read_discrete_inputs(0, 16, slave=1)
    check(not r.isError() and r.bits[:16] == [(0x8001 >> i) & 1 == 1 for i in range(16)], f"read DI: {r}")
    r = c.read_discrete_inputs(15, 2, slave=1)
    check(r.isError() and r.exception_code == 2, f"DI past the end: {r}")
    r = c.read_discrete_inputs(0, 2001, slave=1)
    check(r.isError() and r.exception_code == 3, f"2001 DIs: {r}")
    r = c.read_input_registers(8, 1, slave=1)
    check(not r.isError() and r.registers == [0x8001], f"port A: {r}")
    r = c.read_input_registers(0, 126, slave=1)
    check(r.isError() and r.exception_code == 3, f"126 registers: {r}")
    r = c.write_coils(2, [True, True], slave=1)
    check(not r.isError(), f"write coils 2,3: {r}")
    p.expect("written 1 B2 1")
    p.expect("written 1 B3 1")
    r = c.write_coils(0, [True, True, True], slave=1)
    check(r.isError() and r.exception_code == 2, f"write coils 0-2 (B1 not writable): {r}")
    r = c.write_register(0, 1, slave=1)
    check(r.isError() and r.exception_code == 2, f"write port B (not all writable): {r}")
    r = c.read_coils(0, 8, slave=1)
    check(not r.isError() and r.bits[:8] == [False, False, True, True] + [False] * 4, f"coils: {r}")
    r = c.read_holding_registers(0, 2, slave=1)
    check(not r.isError() and r.registers == [0x0C, 0], f"holding: {r}")
    # Unit 2 is configured; unit 3 is not (0A); a failing card answers 04.
    r = c.read_coils(0, 1, slave=3)
    check(r.isError() and r.exception_code == 0x0A, f"unit 3: {r}")
    p.send("fail 1")
    r = c.read_discrete_inputs(0, 1, slave=2)
    check(r.isError() and r.exception_code == 4, f"failing card: {r}")
    p.send("fail 0")
    r = c.read_discrete_inputs(0, 1, slave=2)
    check(not r.isError(), f"card back: {r}")
    # An unknown function code: 01.
    from pymodbus.other_message import ReportSlaveIdRequest

    r = c.execute(ReportSlaveIdRequest(1))
    check(r.isError() and r.exception_code == 1, f"function 11 (report server ID): {r}")
    c.close()
    p.stop()


def case_writes():
    # By default nothing is writable: every write function is refused with 02.
    p = peer(server_config())
    with connect(p.port) as s:
        for pdu in (struct.pack(">BHH", 5, 0, 0xFF00), struct.pack(">BHH", 6, 0, 1),
                    struct.pack(">BHHB", 0x0F, 0, 1, 1) + b"\x01",
                    struct.pack(">BHHBH", 0x10, 1, 1, 2, 7)):
            r = request(s, 1, pdu)
            check(r == bytes([pdu[0] | 0x80, 2]), f"write {pdu.hex()} answered {r.hex()}")
        # A malformed write is 03, not a write.
        r = request(s, 1, struct.pack(">BHH", 5, 0, 0x1234))
        check(r == b"\x85\x03", f"coil value 1234: {r.hex()}")
    s = p.stats()
    check(s["refused_writes"] == 4, f"refused writes {s}")
    p.stop()
    # Allowed line by line: C0..C15 make holding register 1 writable; B0 coil 0 only.
    p = peer(server_config(writable='writable = ["B0", ' + ", ".join(f'"C{i}"' for i in range(16)) + "]"))
    with connect(p.port) as s:
        check(request(s, 1, struct.pack(">BHH", 5, 0, 0xFF00)) == struct.pack(">BHH", 5, 0, 0xFF00), "coil 0")
        p.expect("written 1 B0 1")
        check(request(s, 1, struct.pack(">BHH", 5, 1, 0xFF00)) == b"\x85\x02", "coil 1 is not writable")
        r = request(s, 1, struct.pack(">BHHBHH", 0x10, 0, 2, 4, 0, 0))
        check(r == b"\x90\x02", f"registers 0-1 (port B is not writable): {r.hex()}")
        r = request(s, 1, struct.pack(">BHHBH", 0x10, 1, 1, 2, 0x8000))
        check(r == struct.pack(">BHH", 0x10, 1, 1), f"register 1: {r.hex()}")
        p.expect("written 1 C15 1")
        check(request(s, 1, struct.pack(">BHH", 3, 1, 1)) == b"\x03\x02\x80\x00", "register 1 reads back")
        check(request(s, 2, struct.pack(">BHH", 5, 0, 0xFF00)) == b"\x85\x02", "unit 2 has nothing writable")
    p.stop()


def case_fuzz():
    p = peer(server_config())
    rnd = random.Random(15)
    kinds = {"random": 0, "bad_protocol": 0, "oversized": 0, "truncated": 0, "random_pdu": 0}
    for i in range(600):
        kind = list(kinds)[i % len(kinds)]
        kinds[kind] += 1
        with connect(p.port) as s:
            if kind == "random":
                s.sendall(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 300))))
            elif kind == "bad_protocol":
                s.sendall(struct.pack(">HHHB", i, rnd.randint(1, 0xFFFF), 6, 1) + b"\x02\x00\x00\x00\x10")
                check(closed_by_server(s), "a bad protocol ID did not close the connection")
            elif kind == "oversized":
                length = rnd.choice([0, 1, 255, 256, 0xFFFF])
                s.sendall(struct.pack(">HHHB", i, 0, length, 1) + bytes(rnd.getrandbits(8) for _ in range(40)))
                check(closed_by_server(s), f"length {length} did not close the connection")
            elif kind == "truncated":
                frame = struct.pack(">HHHB", i, 0, 6, 1) + b"\x02\x00\x00\x00\x10"
                s.sendall(frame[:rnd.randint(1, len(frame) - 1)])
            else:
                # A well-framed random PDU: an answer (possibly an exception) on the same connection.
                pdu = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 253)))
                r = request(s, rnd.choice([1, 2, 3, 0, 255]), pdu, tid=i)
                check(len(r) >= 2, f"answer to {pdu.hex()}: {r.hex()}")
        if i % 50 == 0:
            check(len(good_read(p.port)) == 4, "a good client during the fuzzing")
    # Every kind was survived, and good clients are answered afterwards.
    for _ in range(20):
        check(good_read(p.port) == b"\x02\x02\x00\x00", "a good client after the fuzzing")
    # The server counts what it closed; wait until it has seen every closed connection.
    deadline = time.monotonic() + GUARD
    while True:
        s = p.stats()
        if s["connections"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(s["bad_frames"] >= kinds["bad_protocol"], f"bad frames counted: {s}")
    check(s["oversized"] >= kinds["oversized"], f"oversized counted: {s}")
    check(s["truncated"] >= kinds["truncated"], f"truncated counted: {s}")
    p.wait_log("closed the connection inside a frame")
    p.wait_log("protocol ID")
    logged = sum(1 for l in p.log if l.startswith("log: modbus:"))
    check(logged < 100, f"{logged} log lines for {sum(kinds.values())} bad connections: not rate-limited")
    print(f"fuzz: {kinds}; server stats {s}; {logged} log lines")
    p.stop()


def case_limits():
    p = peer(server_config(extra="max_connections = 3\nidle_timeout_s = 2\n"))
    held = [connect(p.port) for _ in range(3)]
    for s in held:
        start = time.monotonic()  # before the last request: the server's last activity comes after it
        check(request(s, 1, struct.pack(">BHH", 2, 0, 1)) == b"\x02\x01\x00", "a read within the cap")
    # The fourth is accepted and closed at once.
    extra = connect(p.port)
    check(closed_by_server(extra), "a fourth connection over max_connections = 3 was served")
    extra.close()
    check(p.stats()["refused"] == 1, "refusal counted")
    p.wait_log("max_connections")
    # Idle: the three are closed after two seconds of silence (the server checks every
    # 0.5 s); one that talks every 0.1 s stays.
    for s in held:
        check(closed_by_server(s), "an idle connection stayed open")
    waited = time.monotonic() - start
    check(2.0 <= waited <= 6.0, f"idle connections closed after {waited:.2f} s with idle_timeout_s = 2")
    for s in held:
        s.close()
    busy = connect(p.port)
    for _ in range(30):
        check(request(busy, 1, struct.pack(">BHH", 2, 0, 1)) == b"\x02\x01\x00", "a busy connection was closed")
        time.sleep(0.1)
    busy.close()
    s = p.stats()
    check(s["idle_closed"] == 3, f"idle closes counted: {s}")
    print(f"limits: closed idle after {waited:.2f} s; stats {s}")
    p.stop()


finish(globals()["case_" + CASE])
print("PASS")
