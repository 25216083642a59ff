# SPDX-License-Identifier: MIT
"""Host end of the test VM's cables.

Every emulated serial port is backed by a host socket; this agent holds the far
end of each, and takes orders from the guest over the virtio-serial port
io.libio.cable, one line per order, one line per answer ("ok ..." or "err ..."):

  hello                          ok <port names>
  send PORT N SEED [MASK]        writes N bytes of pattern(SEED) into PORT
  expect PORT N SEED TIMEOUT_MS [MASK]
                                 reads N bytes from PORT, compares with pattern(SEED)
  echo PORT on|off               sends back whatever PORT receives
  drain PORT                     discards what PORT has received: ok <count>
  say PORT TEXT...               writes TEXT and CR LF into PORT
  hear PORT TIMEOUT_MS           one line received on PORT: ok <text>
  qmp JSON                       one QMP command to QEMU: ok <answer as JSON>
  modbus PORT start UNIT:MODEL...
                                 simulated SeaI/O modules (tests/native/seaio_sim.py,
                                 Modbus RTU) on the host end of PORT: ok
  modbus PORT stop               ends them; PORT is a plain cable again: ok
  modbus PORT COMMAND...         one of seaio_sim.py's commands (di, do, ai,
                                 ao, fault, requests): ok <its answer>
  board ORDER...                 an order to the PCI test board's model (vm.py
                                 --pci-board; tests/vm/pciboard.py has them all):
    board hello                  ok <guest peer ID> <msix|intx> <present|absent>
    board in HEX                 sets the inputs: ok <changed bits HEX>
    board pulse LINE N [US]      N pulses on one input: ok <interrupts raised>
    board out | en               ok <OUT or EN as 0x%08x>
    board wseq                   ok <WSEQ>
    board counts                 ok doorbells=N irqs=N
    board fault gone|chatter LINE|none
                                 ok
    board fault spurious N       ok <interrupts raised>
    board unplug                 QMP device_del board0, waits (30 s at most)
                                 for its DEVICE_DELETED, then removes chardev
                                 ivsh: ok <seconds until DEVICE_DELETED>
    board plug                   adds chardev ivsh again (QEMU connects to the
                                 model, a new peer) and device_adds board0 as
                                 at boot: ok <new peer ID>

pattern(SEED) is xorshift32 (13, 17, 5) from SEED (0 means 0x9e3779b9), one
byte per step, the low byte of the state; tests/vm/cable.hpp makes the same.
MASK (default 0xff) is ANDed into every byte, for ports set to fewer than 8
data bits (0x7f for 7 bits).
"""

import json
import os
import socket
import subprocess
import threading
import time

# The PCI test board (vm.py --pci-board): QEMU's ids for it and its chardev.
BOARD_DEV = "board0"
BOARD_CHARDEV = "ivsh"
BOARD_BUS = "rp0"
UNPLUG_TIMEOUT = 30
# The simulated Modbus modules of the `modbus` orders.
SEAIO_SIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "native", "seaio_sim.py")


def board_device(irq):
    """device_add arguments of the PCI test board (vm.py's -device line, as a dict)."""
    dev = {"driver": "ivshmem-doorbell", "id": BOARD_DEV, "chardev": BOARD_CHARDEV,
           "vectors": 1, "bus": BOARD_BUS}
    if irq == "intx":
        dev["msi"] = False
    return dev


def board_device_arg(irq):
    """The same as QEMU's -device option."""
    dev = board_device(irq)
    return ",".join([dev.pop("driver")] + [f"{k}={'off' if v is False else v}" for k, v in dev.items()])


def pattern(seed, n):
    x = seed & 0xFFFFFFFF or 0x9E3779B9
    out = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def masked(data, mask):
    if mask == 0xFF:
        return data
    return data.translate(bytes(i & mask for i in range(256)))


def connect(path, timeout=20.0):
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


class Port:
    """One cable end: everything received is kept until an order consumes it."""

    def __init__(self, name, path):
        self.name = name
        self.sock = connect(path)
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.echo = False
        self.sink = None  # when set, takes everything received (a Modbus simulator)
        self.closed = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                if self.sink:
                    self.sink(data)
                elif self.echo:
                    self.sock.sendall(data)
                else:
                    self.buf += data
                self.cond.notify_all()

    def send(self, data):
        self.sock.sendall(data)

    def take(self, n, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while len(self.buf) < n and not self.closed:
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            got = bytes(self.buf[:n])
            del self.buf[:len(got)]
            return got

    def take_line(self, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while b"\n" not in self.buf and not self.closed:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            if b"\n" not in self.buf:
                return None
            n = self.buf.index(b"\n") + 1
            line = bytes(self.buf[:n])
            del self.buf[:n]
            return line

    def drain(self):
        with self.cond:
            n = len(self.buf)
            self.buf.clear()
            return n


class ModbusSim:
    """seaio_sim.py serving Modbus RTU on the host end of one cable. The
    simulator gets a pty, as on a native test; the bytes between the pty and
    the port's socket are copied both ways."""

    def __init__(self, port, specs):
        self.port = port
        self.master, self.slave = os.openpty()
        self.proc = subprocess.Popen(
            [SEAIO_SIM, "--rtu", os.ttyname(self.slave)] + specs,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            self.proc.kill()
            err = self.proc.communicate()[1]
            os.close(self.slave)
            os.close(self.master)
            raise RuntimeError(f"seaio_sim.py did not start: {(ready + err).strip()[-300:]}")
        with port.cond:
            port.buf.clear()
            port.sink = self._to_sim
        self.copier = threading.Thread(target=self._from_sim, daemon=True)
        self.copier.start()

    def _to_sim(self, data):
        os.write(self.master, data)

    def _from_sim(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: the simulator and our slave end are closed
                return
            if not data:
                return
            try:
                self.port.send(data)
            except OSError:
                return

    def command(self, words):
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if not line:
            return "err seaio_sim.py ended"
        if line.startswith("error:"):
            return "err " + line[len("error:"):].strip()
        return "ok " + line

    def stop(self):
        with self.port.cond:
            self.port.sink = None
        if self.proc.poll() is None:
            self.proc.stdin.close()  # it ends at the end of its input
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self.slave)
        if getattr(self, "copier", None):
            self.copier.join(10)
        os.close(self.master)


class Agent:
    def __init__(self, ctl_path, ports, qmp_path, board=None):
        self.ctl_path = ctl_path
        self.port_paths = ports
        self.qmp_path = qmp_path
        self.board = board  # pciboard.Board, or None
        self.ports = {}
        self.sims = {}  # port name -> ModbusSim
        self.qmp = None
        self.qmp_cond = threading.Condition()
        self.qmp_replies = []
        self.qmp_events = []  # every asynchronous QMP event so far, in order
        self.ctl = None

    def close(self):
        for sim in list(self.sims.values()):
            sim.stop()
        self.sims.clear()
        for s in [self.ctl, self.qmp] + [p.sock for p in self.ports.values()]:
            if s:
                try:
                    s.close()
                except OSError:
                    pass

    def _qmp_reader(self):
        # Replies and events come interleaved; events are kept for _qmp_event.
        try:
            for line in self.qmp_file:
                msg = json.loads(line)
                with self.qmp_cond:
                    (self.qmp_events if "event" in msg else self.qmp_replies).append(msg)
                    self.qmp_cond.notify_all()
        except (OSError, ValueError):  # closed by close()
            pass
        with self.qmp_cond:
            self.qmp_replies.append(None)
            self.qmp_cond.notify_all()

    def _qmp(self, cmd):
        if self.qmp is None:
            self.qmp = connect(self.qmp_path)
            self.qmp_file = self.qmp.makefile("rw")
            json.loads(self.qmp_file.readline())  # greeting
            threading.Thread(target=self._qmp_reader, daemon=True).start()
            self._qmp({"execute": "qmp_capabilities"})
        self.qmp_file.write(json.dumps(cmd) + "\n")
        self.qmp_file.flush()
        with self.qmp_cond:
            self.qmp_cond.wait_for(lambda: self.qmp_replies)
            msg = self.qmp_replies.pop(0)
        if msg is None:
            raise OSError("QEMU closed its QMP socket")
        return msg

    def _qmp_event(self, name, since, timeout, **data):
        """The first event `name` at index since or later whose data has the
        given items, waiting up to timeout seconds; None when none came."""
        def find():
            for ev in self.qmp_events[since:]:
                if ev["event"] == name and all(ev.get("data", {}).get(k) == v for k, v in data.items()):
                    return ev
            return None
        with self.qmp_cond:
            return self.qmp_cond.wait_for(find, timeout)

    def _qmp_ok(self, cmd, what):
        answer = self._qmp(cmd)
        if "error" in answer:
            raise RuntimeError(f"{what}: {answer['error'].get('desc', answer['error'])}")
        return answer["return"]

    def _board(self, words):
        if self.board is None:
            return "err no PCI test board in this VM (vm.py run --pci-board)"
        if words[:1] == ["unplug"]:
            return self._board_unplug()
        if words[:1] == ["plug"]:
            return self._board_plug()
        return self.board.order(words)

    def _board_unplug(self):
        if self.qmp is None:
            self._qmp({"execute": "query-status"})
        since = len(self.qmp_events)
        t0 = time.monotonic()
        self._qmp_ok({"execute": "device_del", "arguments": {"id": BOARD_DEV}}, "device_del")
        if self._qmp_event("DEVICE_DELETED", since, UNPLUG_TIMEOUT, device=BOARD_DEV) is None:
            return f"err no DEVICE_DELETED for {BOARD_DEV} within {UNPLUG_TIMEOUT} s"
        took = time.monotonic() - t0
        self.board.plugged = False
        # The chardev outlives the device, still connected: it goes too, so
        # that plug connects anew (QEMU reads the server's greeting while it
        # realizes the device).
        end = time.monotonic() + 10
        while True:
            answer = self._qmp({"execute": "chardev-remove", "arguments": {"id": BOARD_CHARDEV}})
            if "error" not in answer:
                break
            if time.monotonic() > end:  # still held by the device being finalized
                return f"err chardev-remove {BOARD_CHARDEV}: {answer['error'].get('desc')}"
            time.sleep(0.05)
        return f"ok {took:.3f}"

    def _board_plug(self):
        connects = self.board.connects
        self._qmp_ok({"execute": "chardev-add", "arguments": {
            "id": BOARD_CHARDEV, "backend": {"type": "socket", "data": {
                "addr": {"type": "unix", "data": {"path": self.board.path}}, "server": False}}}},
            "chardev-add")
        if self.board.wait_connected(connects + 1, 30) is None:
            return f"err QEMU did not connect to {self.board.path}"
        self._qmp_ok({"execute": "device_add", "arguments": board_device(self.board.irq)}, "device_add")
        self.board.plugged = True
        return f"ok {self.board.guest.id}"

    def _modbus(self, name, port, words):
        if not words:
            return "err modbus PORT start UNIT:MODEL...|stop|COMMAND..."
        sim = self.sims.get(name)
        if words[0] == "start":
            if sim:
                return f"err modules already on {name}"
            if len(words) < 2:
                return "err modbus PORT start UNIT:MODEL... (at least one module)"
            self.sims[name] = ModbusSim(port, words[1:])
            return "ok"
        if sim is None:
            return f"err no modules on {name} (modbus {name} start UNIT:MODEL...)"
        if words[0] == "stop":
            del self.sims[name]
            sim.stop()
            return "ok"
        return sim.command(words)

    def order(self, words):
        verb = words[0]
        if verb == "hello":
            return "ok " + " ".join(sorted(self.ports))
        if verb == "qmp":
            return "ok " + json.dumps(self._qmp(json.loads(" ".join(words[1:]))))
        if verb == "board":
            return self._board(words[1:])
        port = self.ports.get(words[1]) if len(words) > 1 else None
        if port is None:
            return f"err no port {words[1:2]}; ports: {' '.join(sorted(self.ports))}"
        if verb == "modbus":
            return self._modbus(words[1], port, words[2:])
        if verb == "send":
            n, seed = int(words[2]), int(words[3], 0)
            mask = int(words[4], 0) if len(words) > 4 else 0xFF
            port.send(masked(pattern(seed, n), mask))
            return f"ok {n}"
        if verb == "expect":
            n, seed, ms = int(words[2]), int(words[3], 0), int(words[4])
            mask = int(words[5], 0) if len(words) > 5 else 0xFF
            want = masked(pattern(seed, n), mask)
            got = port.take(n, ms / 1000.0)
            for i, (a, b) in enumerate(zip(got, want)):
                if a != b:
                    return f"err byte {i} is 0x{a:02x}, expected 0x{b:02x}"
            if len(got) < n:
                return f"err got {len(got)} of {n} bytes within {ms} ms"
            return f"ok {n}"
        if verb == "echo":
            with port.cond:
                port.echo = words[2] == "on"
                if port.echo and port.buf:
                    port.sock.sendall(bytes(port.buf))
                    port.buf.clear()
            return "ok"
        if verb == "drain":
            return f"ok {port.drain()}"
        if verb == "say":
            port.send(" ".join(words[2:]).encode() + b"\r\n")
            return "ok"
        if verb == "hear":
            line = port.take_line(int(words[2]) / 1000.0)
            if line is None:
                return f"err nothing heard on {words[1]} within {words[2]} ms"
            return "ok " + line.decode(errors="backslashreplace").rstrip("\r\n")
        return f"err unknown order '{verb}'"

    def serve(self):
        try:
            for name, path in self.port_paths.items():
                self.ports[name] = Port(name, path)
            self.ctl = connect(self.ctl_path)
            f = self.ctl.makefile("rw", newline="\n")
            for line in f:
                words = line.split()
                if not words:
                    continue
                try:
                    answer = self.order(words)
                except Exception as e:  # an order that cannot be carried out is the guest's error
                    answer = f"err {type(e).__name__}: {e}"
                f.write(answer + "\n")
                f.flush()
        except OSError:
            return
