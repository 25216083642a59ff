#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""seaio_sim.py: simulated Sealevel SeaI/O modules, the far end of libio's
Modbus tests. pymodbus (Debian's python3-pymodbus, 3.0) frames, checks and
decodes the requests and executes them on its datastore; this script only
adds the SeaI/O models and the faults a test asks for.

    seaio_sim.py --tcp UNIT:MODEL...          Modbus/TCP on 127.0.0.1, a free port
    seaio_sim.py --rtu DEVICE [--pace BAUD] UNIT:MODEL...
                                              Modbus RTU on a serial device (a pty)

--pace BAUD gives a pty the time a line at BAUD, 8N1 (10 bits a character),
takes to carry each frame: a request is handled once its last character
would have arrived (its length x 10 bits after it was read), and a reply is
written once its last character would have left (its length x 10 bits after
it was ready). The turnaround excludes both.

It prints "ready PORT" (TCP) or "ready" (RTU) once it serves, then takes
commands on stdin, one a line, and answers each with one line:

    di UNIT INDEX 0|1      set a discrete input            -> ok
    do UNIT                the coils, bit i = DOi, in hex  -> do 0x...
    ai UNIT INDEX VALUE    set an input register (A/D)     -> ok
    ao UNIT                the holding registers (D/A)     -> ao V0 V1 ...
    fault UNIT MODE        none, silent (no answer), exception (04 to
                           everything), badcrc (RTU: the CRC's last byte
                           flipped)                        -> ok
    requests UNIT          requests answered or refused    -> requests N
    turnaround             the module's turnaround since the last asking:
                           from the read that completed a request to its
                           reply's write, over every reply
                           -> turnaround N P50_US P99_US MAX_US

Models (SeaI/O user manual p. 54): function codes and lines per model.
"""
import logging
import os
import select
import socket
import sys
import termios
import time
import tty

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext
from pymodbus.factory import ServerDecoder
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.pdu import ModbusExceptions, ModbusRequest, ModbusResponse

MODELS = {
    "410": ((1, 2, 5, 15), 16, 16),
    "420": ((1, 2, 5, 15), 16, 8),
    "430": ((2,), 32, 0),
    "440": ((1, 5, 15), 0, 32),
    "450": ((1, 5, 15), 0, 16),
    "470": ((2, 1, 5, 15, 4, 6, 16), 8, 8),
    "520": ((1, 2, 5, 15), 8, 8),
}

# Sealevel's Get Config (0x45), SeaI/O user manual p. 56 and Appendix A: no
# request data; the reply is the model code, bridge, baud, parity and the
# magic cookie. 520 answers 0x00 (outside the 4xx series).
GET_CONFIG = 0x45
MODEL_CODES = {"410": 0x9A, "420": 0xA4, "430": 0xAE, "440": 0xB8, "450": 0xC2, "470": 0xD6, "520": 0x00}


class GetConfigResponse(ModbusResponse):
    function_code = GET_CONFIG
    _rtu_frame_size = 9

    def __init__(self, config=b"", **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def encode(self):
        return bytes(self.config)

    def decode(self, data):
        self.config = data


class GetConfigRequest(ModbusRequest):
    function_code = GET_CONFIG
    _rtu_frame_size = 4

    def encode(self):
        return b""

    def decode(self, data):
        pass

    def execute(self, context):
        # bridge RS-485 (00), 9600 baud (04), no parity (00), cookie 0xCA
        return GetConfigResponse(bytes([context.seaio_model_code, 0x00, 0x04, 0x00, 0xCA]))


class Module:
    def __init__(self, model):
        codes, inputs, outputs = MODELS[model]
        self.codes = codes + (GET_CONFIG,)
        # zero_mode: request address 0 is the block's first value, as on SeaI/O.
        # A model without inputs or outputs refuses their function codes;
        # pymodbus wants a non-empty block all the same: one out of reach.
        def block(n):
            return ModbusSequentialDataBlock(0, [0] * n) if n else ModbusSequentialDataBlock(0x10000, [0])
        self.store = ModbusSlaveContext(
            di=block(inputs),
            co=block(outputs),
            # The 470's 16 A/D inputs and 2 D/A outputs (manual p. 38).
            ir=block(16 if model == "470" else 0),
            hr=block(2 if model == "470" else 0),
            zero_mode=True)
        self.store.seaio_model_code = MODEL_CODES[model]
        self.outputs = outputs
        self.fault = "none"
        self.requests = 0


# Silence after which a partial RTU frame is dropped (see main()).
RTU_SILENCE_NS = 50_000_000


def main():
    # Exception replies are what the tests ask for, not errors worth a log line.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    args = sys.argv[1:]
    if len(args) < 2 or args[0] not in ("--tcp", "--rtu"):
        sys.exit(__doc__)
    rtu = args[0] == "--rtu"
    char_ns = 0  # --pace: one character's time on the line
    if rtu:
        device, specs = args[1], args[2:]
        if specs[:1] == ["--pace"] and len(specs) > 1:
            char_ns = 10 * 1_000_000_000 // int(specs[1])
            specs = specs[2:]
    else:
        specs = args[1:]
    modules = {}
    for spec in specs:
        unit, model = spec.split(":")
        modules[int(unit)] = Module(model)
    decoder = ServerDecoder()
    decoder.register(GetConfigRequest)

    # Connections: fd -> (file object or socket, framer)
    conns = {}
    listener = None
    if rtu:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        termios.tcflush(fd, termios.TCIOFLUSH)
        conns[fd] = ModbusRtuFramer(decoder)
        print("ready", flush=True)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        print("ready", listener.getsockname()[1], flush=True)

    # pymodbus 3.0 (Debian 12) calls the unit unit_id, 3.1 and later slave_id.
    def unit_of(message):
        return getattr(message, "slave_id", getattr(message, "unit_id", None))

    last_rx = [0]  # rtu: when the last bytes came
    turnarounds = []  # ns, since the last `turnaround` command
    read_at = [0]  # when the data being framed was read (and held, when paced)

    def hold(ns):
        # Until monotonic time + ns: a sleep, then a spin for the last 300 us
        # (a sleep alone overshoots by tens of microseconds).
        end = time.monotonic_ns() + ns
        if ns > 300_000:
            time.sleep((ns - 300_000) / 1e9)
        while time.monotonic_ns() < end:
            pass

    def reply(fd, framer, request):
        unit = unit_of(request)
        module = modules.get(unit)
        if module is None:
            return  # not ours: on a bus, another module's request
        module.requests += 1
        if module.fault == "silent":
            return
        if module.fault == "exception":
            response = request.doException(ModbusExceptions.SlaveFailure)
        elif request.function_code not in module.codes:
            response = request.doException(ModbusExceptions.IllegalFunction)
        else:
            response = request.execute(module.store)
        response.transaction_id = request.transaction_id
        response.unit_id = response.slave_id = unit
        packet = bytearray(framer.buildPacket(response))
        if module.fault == "badcrc" and rtu:
            packet[-1] ^= 0xFF
        turnarounds.append(time.monotonic_ns() - read_at[0])
        if char_ns:
            hold(len(packet) * char_ns)
        os.write(fd, packet)

    def command(line):
        words = line.split()
        if not words:
            return "error: empty command"
        if words[0] == "turnaround":
            t = sorted(turnarounds)
            turnarounds.clear()
            if not t:
                return "turnaround 0 0 0 0"
            def pct(p):
                return t[min(len(t) - 1, len(t) * p // 100)] / 1000
            return "turnaround %d %.1f %.1f %.1f" % (len(t), pct(50), pct(99), t[-1] / 1000)
        try:
            module = modules[int(words[1])]
            if words[0] == "di":
                module.store.setValues(2, int(words[2]), [int(words[3])])
                return "ok"
            if words[0] == "do":
                bits = module.store.getValues(1, 0, module.outputs) if module.outputs else []
                return "do 0x%x" % sum(1 << i for i, b in enumerate(bits) if b)
            if words[0] == "ai":
                module.store.setValues(4, int(words[2]), [int(words[3])])
                return "ok"
            if words[0] == "ao":
                return " ".join(["ao"] + [str(v) for v in module.store.getValues(3, 0, 2)])
            if words[0] == "fault":
                if words[2] not in ("none", "silent", "exception", "badcrc"):
                    return "error: fault none|silent|exception|badcrc"
                module.fault = words[2]
                return "ok"
            if words[0] == "requests":
                return "requests %d" % module.requests
        except (IndexError, KeyError, ValueError) as e:
            return "error: %s" % e
        return "error: unknown command " + words[0]

    stdin = sys.stdin.fileno()
    while True:
        fds = [stdin] + list(conns) + ([listener.fileno()] if listener else [])
        ready, _, _ = select.select(fds, [], [])
        for fd in ready:
            if fd == stdin:
                line = sys.stdin.readline()
                if not line:
                    return  # the test ended
                print(command(line), flush=True)
            elif listener and fd == listener.fileno():
                conn, _ = listener.accept()
                conns[conn.detach()] = ModbusSocketFramer(decoder)
            else:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    data = b""
                if char_ns:
                    hold(len(data) * char_ns)
                read_at[0] = time.monotonic_ns()
                if not data:
                    if not rtu:
                        os.close(fd)
                        del conns[fd]
                    continue
                framer = conns[fd]
                if rtu:
                    # Silence on the line ends a frame (Modbus RTU's 3.5
                    # characters; a pty has no baud rate, so RTU_SILENCE_S):
                    # what a master left half sent before a timeout, or what
                    # a port's flush cut, is dropped as a module drops it,
                    # instead of being taken for the head of the next frame.
                    if last_rx[0] and read_at[0] - last_rx[0] > RTU_SILENCE_NS:
                        framer.resetFrame()
                    last_rx[0] = read_at[0]
                framer.processIncomingPacket(data, lambda r, fd=fd, f=framer: reply(fd, f, r), list(modules))


if __name__ == "__main__":
    main()
