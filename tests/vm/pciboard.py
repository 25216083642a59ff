# SPDX-License-Identifier: MIT
"""Host model of the iocard PCI test board (layout: issue 13's agreed spec).

The board is QEMU's ivshmem-doorbell (PCI 1af4:1110) on the test VM's q35
machine, behind pcie-root-port rp0 as device board0; its chardev ivsh is a
client of the unix socket this model listens on. Debian ships no
ivshmem-server, so the model speaks QEMU's ivshmem server protocol itself
(QEMU docs/specs/ivshmem-spec.rst): every message is one little-endian int64,
some with one file descriptor attached (SCM_RIGHTS). To each client that
connects it sends

  0                      the protocol version
  ID                     the client's own peer ID (1, 2, ... one per connection)
  -1 + shm fd            the shared memory (BAR2), a 4 KiB memfd
  0 + eventfd            peer 0 (this model), one eventfd per vector
  OTHER + eventfd        every other client, one per vector (there is none in
                         the test VM)
  ID + eventfd           the client's own eventfds, one per vector

and later PEER (no fd) when another client goes. Any byte from a client, or
its hanging up, ends its connection (as in QEMU's ivshmem-server). QEMU reads
the messages up to the shared memory while it realizes the device: at boot
and at each device_add, so the chardev connects anew before each device_add
(the cable agent's `board unplug` removes chardev ivsh once the device is
deleted, `board plug` adds it again before device_add).

The model is peer 0: the guest rings it with Doorbell = (0 << 16) | 0, which
QEMU turns into a write to peer 0's eventfd; the model interrupts the guest by
writing the guest's vector-0 eventfd (QEMU then raises MSI-X vector 0, or sets
IntrStatus and INTx with msi=off, a mode the ivshmem-doorbell of Debian 12's
QEMU 7.2 lacks: it has no msi property and always uses MSI-X). The guest's
vector eventfds are semaphores: each write is one interrupt. That also marks
them for qemu_shim(), which vm.py preloads into QEMU so that unplugging the
board does not crash QEMU 7.2 (see SHIM_SOURCE).

Shared memory (little-endian 32-bit words, one writer per word):
  0x000 ID   host   0x494f4342 while present, all-ones while `gone`
  0x004 IN   host   input levels, bit n = IN n
  0x008 OUT  guest  output levels (read fresh at every order and doorbell)
  0x00c EN   guest  change-of-state enable, bit n for IN n
  0x010 WSEQ guest  incremented by the driver after each OUT or EN write
  0x080 + 4n CHG[n] host  changes of IN n since the board started (wraps)

The memory lives as long as the model: it is the same across unplug and plug,
so the last OUT (the safe state a driver applies at removal) can be read after
the device is gone.

Orders (Board.order(), reached through the cable agent's `board ...`; one
line each, answered "ok ..." or "err ..."):

  hello                  ok <guest peer ID> <msix|intx> <present|absent>
                         (ID 0: no guest connected yet; absent: unplugged,
                         or no guest connected)
  in HEX                 sets IN; each changed bit counts in its CHG; one
                         interrupt when (changed & EN) != 0, answered once
                         QEMU took it: ok <changed HEX>
  pulse LINE N [US]      N pulses on IN LINE = 2N changes, each with its own
                         interrupt when LINE is enabled; after each the model
                         waits until QEMU took the eventfd, then US
                         microseconds (default 2000, see PULSE_PERIOD_US):
                         ok <interrupts raised>
  out                    ok <OUT HEX>
  en                     ok <EN HEX>
  wseq                   ok <WSEQ decimal>
  counts                 ok doorbells=N irqs=N (since the model started)
  fault gone             every word of the shared memory reads all-ones; `in`
                         and `pulse` then change the kept state, with no
                         interrupt
  fault chatter LINE     IN LINE toggles every ~100 us (interrupts when
                         enabled, none while QEMU has one to take) until
                         `fault none`
  fault spurious N       N interrupts with no change, paced as pulses:
                         ok <interrupts raised>
  fault none             ends chatter; after `gone`, the memory as it was
  (unplug and plug are the cable agent's: they need QMP)

HEX is read with or without 0x and answered as 0x%08x.
"""

import contextlib
import hashlib
import mmap
import os
import select
import selectors
import socket
import struct
import subprocess
import threading
import time

SHM_SIZE = 4096
BOARD_ID = 0x494F4342  # "BCOI" in memory, 'IOCB' as a number
ID, IN, OUT, EN, WSEQ, CHG = 0x000, 0x004, 0x008, 0x00C, 0x010, 0x080
LINES = 32
MODEL_PEER = 0
CHATTER_PERIOD = 100e-6
# Under TCG the guest needs more than 200 us to take one interrupt and
# report its edge: with 200 us, gpiomon on the iocard driver saw 1 edge of
# 10 (3 MSI-X interrupts reached the guest); with 2 ms and 20 ms all 10. A
# pace is no handshake, though: a test that must see every edge changes one
# line per order and waits for its event.
PULSE_PERIOD_US = 2000


# QEMU 7.2's ivshmem watches the guest's vector eventfd with a main-loop fd
# handler (qemu_set_fd_handler, whenever KVM irqfd is not in use: always under
# TCG, MSI-X or INTx) and never removes it: unplug closes the fd and frees the
# handler's data, the handler stays. The next fd QEMU opens under that number
# (a 9p file, as soon as the guest's udev reacts to the removal) is readable,
# the stale handler runs, and QEMU dies of SIGSEGV in object_dynamic_cast_assert.
# Seen on every unplug here. The fd number cannot be reclaimed from outside
# without a race, so this library, preloaded into QEMU, does it at the close
# itself: an eventfd marked as the model's guest vector (EFD_SEMAPHORE, which
# nothing in QEMU uses) is not closed but replaced, under the same number, by
# an eventfd nobody writes, so the stale handler never runs. One fd stays
# behind per unplug.
SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static int is_guest_vector(int fd)
{
    char path[64], link[32], line[128];
    ssize_t n;
    int found = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        return 0;
    link[n] = 0;
    if (strcmp(link, "anon_inode:[eventfd]") != 0)
        return 0;
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strcmp(line, "eventfd-semaphore: 1\n") == 0)
            found = 1;
    fclose(f);
    return found;
}

int close(int fd)
{
    static int (*real_close)(int);
    int inert;

    if (!real_close)
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && is_guest_vector(fd)) {
        inert = eventfd(0, EFD_CLOEXEC);
        if (inert >= 0 && dup3(inert, fd, O_CLOEXEC) == fd) {
            real_close(inert);
            return 0;
        }
        if (inert >= 0)
            real_close(inert);
    }
    return real_close(fd);
}
"""


def qemu_shim(cache):
    """The preload library for QEMU (see SHIM_SOURCE), built once into cache."""
    key = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()[:16]
    lib = os.path.join(cache, f"pciboard-qemu-shim-{key}.so")
    if not os.path.exists(lib):
        os.makedirs(cache, exist_ok=True)
        tmp = f"{lib}.{os.getpid()}"  # parallel runs share the cache
        with open(tmp + ".c", "w") as f:
            f.write(SHIM_SOURCE)
        subprocess.run(["cc", "-O2", "-Wall", "-shared", "-fPIC", "-o", tmp, tmp + ".c", "-ldl"], check=True)
        os.unlink(tmp + ".c")
        os.rename(tmp, lib)
    return lib


class Peer:
    """One client of the server: a QEMU ivshmem device's chardev connection."""

    def __init__(self, peer_id, sock, vectors):
        self.id = peer_id
        self.sock = sock
        # EFD_SEMAPHORE marks them for qemu_shim(); QEMU's handler reads one
        # count per call, so each write is one interrupt.
        self.eventfds = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK | os.EFD_SEMAPHORE)
                         for _ in range(vectors)]

    def close(self):
        self.sock.close()
        for fd in self.eventfds:
            os.close(fd)
        self.eventfds = []


def send_msg(sock, value, fd=None):
    data = struct.pack("<q", value)
    if fd is None:
        sock.sendall(data)
    else:
        socket.send_fds(sock, [data], [fd])


class Board:
    """The ivshmem server and the board model behind it, served from a thread."""

    def __init__(self, path, irq="msix", vectors=1):
        if irq not in ("msix", "intx"):
            raise ValueError(f"irq mode '{irq}': msix or intx")
        self.path = path
        self.irq = irq
        self.vectors = vectors
        self.shm_fd = os.memfd_create("libio-pciboard", os.MFD_CLOEXEC)
        os.ftruncate(self.shm_fd, SHM_SIZE)
        self.mem = mmap.mmap(self.shm_fd, SHM_SIZE)
        self.own = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(vectors)]
        self.cond = threading.Condition(threading.RLock())
        self.peers = {}
        self.next_id = 1
        self.guest = None  # the newest client: the guest's device
        self.connects = 0
        self.plugged = True
        self.doorbells = 0
        self.irqs = 0
        self.kept = None  # the memory as it was before `fault gone`
        self.chatter = None
        self._put(ID, BOARD_ID)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(path)
        self.listener.listen(4)  # QEMU may connect before the thread runs
        self.wake_r, self.wake_w = os.pipe2(os.O_CLOEXEC)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.listener, selectors.EVENT_READ, self._accept)
        self.sel.register(self.own[0], selectors.EVENT_READ, self._doorbell)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # --- shared memory ------------------------------------------------------
    def _get(self, off):
        return struct.unpack_from("<I", self.mem, off)[0]

    def _put(self, off, value):
        struct.pack_into("<I", self.mem, off, value & 0xFFFFFFFF)

    # --- the server -----------------------------------------------------------
    def _serve(self):
        while True:
            for key, _ in self.sel.select():
                if key.data is None:
                    return
                key.data(key.fileobj)

    def _accept(self, listener):
        sock, _ = listener.accept()
        with self.cond:
            while self.next_id in self.peers:
                self.next_id += 1
            peer = Peer(self.next_id, sock, self.vectors)
            self.next_id += 1
            try:
                send_msg(sock, 0)  # protocol version
                send_msg(sock, peer.id)
                send_msg(sock, -1, self.shm_fd)
                for fd in self.own:
                    send_msg(sock, MODEL_PEER, fd)
                for other in self.peers.values():
                    for fd in other.eventfds:
                        send_msg(sock, other.id, fd)
                    for fd in peer.eventfds:
                        send_msg(other.sock, peer.id, fd)
                for fd in peer.eventfds:
                    send_msg(sock, peer.id, fd)
            except OSError:
                peer.close()
                return
            self.peers[peer.id] = peer
            self.guest = peer
            self.connects += 1
            self.sel.register(sock, selectors.EVENT_READ, self._hangup)
            self.cond.notify_all()

    def _hangup(self, sock):
        with self.cond:
            peer = next(p for p in self.peers.values() if p.sock is sock)
            self.sel.unregister(sock)
            del self.peers[peer.id]
            peer.close()
            if self.guest is peer:
                self.guest = None
            for other in self.peers.values():
                try:
                    send_msg(other.sock, peer.id)
                except OSError:
                    pass
            self.cond.notify_all()

    def _doorbell(self, fd):
        with self.cond:
            self._take_doorbells()

    def _take_doorbells(self):
        try:
            self.doorbells += os.eventfd_read(self.own[0])
        except BlockingIOError:
            pass

    def wait_connected(self, connects, timeout):
        """Waits until the server has had `connects` connections: the guest's peer ID, or None."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.connects >= connects and self.guest, timeout):
                return None
            return self.guest.id

    def close(self):
        self._stop_chatter()
        os.write(self.wake_w, b"x")
        self.thread.join(5)
        with self.cond:
            for peer in list(self.peers.values()):
                peer.close()
            self.peers.clear()
            self.sel.close()
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            for fd in self.own + [self.wake_r, self.wake_w]:
                os.close(fd)
            self.mem.close()
            os.close(self.shm_fd)

    # --- the model ------------------------------------------------------------
    def _interrupt(self, coalesce=False):
        """Raises the guest's vector 0; the eventfd, or None without a guest.
        With coalesce, not while QEMU has still to take the last one (the
        eventfd counts every write, each becomes an interrupt of its own)."""
        if self.guest is None or not self.plugged:
            return None
        fd = self.guest.eventfds[0]
        if coalesce and select.select([fd], [], [], 0)[0]:
            return None
        os.eventfd_write(fd, 1)
        self.irqs += 1
        return fd

    def _change(self, mask):
        """IN ^= mask, each changed bit counted in its CHG (IN first, so a new
        count always comes with the new level); True when an enabled one changed."""
        if self.kept is not None:  # gone: the kept state changes, nobody is told
            level = struct.unpack_from("<I", self.kept, IN)[0]
            struct.pack_into("<I", self.kept, IN, level ^ mask)
            for n in range(LINES):
                if mask >> n & 1:
                    c = struct.unpack_from("<I", self.kept, CHG + 4 * n)[0]
                    struct.pack_into("<I", self.kept, CHG + 4 * n, (c + 1) & 0xFFFFFFFF)
            return False
        self._put(IN, self._get(IN) ^ mask)
        for n in range(LINES):
            if mask >> n & 1:
                self._put(CHG + 4 * n, self._get(CHG + 4 * n) + 1)
        return bool(mask & self._get(EN))

    @staticmethod
    def _taken(fd, timeout=1.0):
        """Waits until QEMU has read the eventfd (its counter is back to 0)."""
        if fd is None:
            return
        p = select.poll()
        p.register(fd, select.POLLIN)
        end = time.monotonic() + timeout
        while p.poll(0) and time.monotonic() < end:
            time.sleep(20e-6)

    def _paced(self, raise_irq, pace_us):
        with self.cond:
            fd = self._interrupt() if raise_irq else None
        self._taken(fd)
        time.sleep(pace_us / 1e6)
        return fd is not None

    def _chatter(self, line, stop):
        while not stop.wait(CHATTER_PERIOD):
            with self.cond:
                if self._change(1 << line):
                    self._interrupt(coalesce=True)

    def _stop_chatter(self):
        if self.chatter:
            thread, stop = self.chatter
            stop.set()
            thread.join()
            self.chatter = None

    def order(self, words):
        """One order (the words after `board`): the answer line."""
        verb = words[0] if words else ""
        args = words[1:]
        if verb == "hello":
            with self.cond:
                guest = self.guest.id if self.guest else 0
                present = self.guest is not None and self.plugged
            return f"ok {guest} {self.irq} {'present' if present else 'absent'}"
        if verb == "in":
            level = int(args[0], 16) & 0xFFFFFFFF
            with self.cond:
                now = struct.unpack_from("<I", self.kept, IN)[0] if self.kept else self._get(IN)
                changed = now ^ level
                fd = self._interrupt() if self._change(changed) else None
            self._taken(fd)
            return f"ok 0x{changed:08x}"
        if verb == "pulse":
            line, n = int(args[0]), int(args[1])
            pace = int(args[2]) if len(args) > 2 else PULSE_PERIOD_US
            if not 0 <= line < LINES:
                return f"err no line {line}"
            raised = 0
            for _ in range(2 * n):
                with self.cond:
                    enabled = self._change(1 << line)
                raised += self._paced(enabled, pace)
            return f"ok {raised}"
        if verb in ("out", "en", "wseq"):
            with self.cond:
                value = self._get({"out": OUT, "en": EN, "wseq": WSEQ}[verb])
            return f"ok {value}" if verb == "wseq" else f"ok 0x{value:08x}"
        if verb == "counts":
            with self.cond:
                self._take_doorbells()
                return f"ok doorbells={self.doorbells} irqs={self.irqs}"
        if verb == "fault":
            return self._fault(args)
        return f"err unknown board order '{verb}'"

    def _fault(self, args):
        kind = args[0] if args else ""
        if kind == "none":
            self._stop_chatter()
            with self.cond:
                if self.kept is not None:
                    self.mem[:] = self.kept
                    self.kept = None
            return "ok"
        if kind == "gone":
            with self.cond:
                if self.kept is None:
                    self.kept = bytearray(self.mem[:])
                    self.mem[:] = b"\xff" * SHM_SIZE
            return "ok"
        if kind == "chatter":
            line = int(args[1])
            if not 0 <= line < LINES:
                return f"err no line {line}"
            self._stop_chatter()
            stop = threading.Event()
            thread = threading.Thread(target=self._chatter, args=(line, stop), daemon=True)
            self.chatter = (thread, stop)
            thread.start()
            return "ok"
        if kind == "spurious":
            raised = sum(self._paced(True, PULSE_PERIOD_US) for _ in range(int(args[1])))
            return f"ok {raised}"
        return f"err unknown fault '{kind}': gone, chatter LINE, spurious N or none"

