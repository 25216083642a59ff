# SPDX-License-Identifier: MIT
"""What iogate's Python tests share: a scratch directory that a failure
leaves behind for a look, the child processes that a failure or the end of
a case kills, and the verdict helpers.

    from gate_test import CHILDREN, GUARD, ON_FAIL, check, fail, finish, scratch
    TMP = scratch("iogate_x_", "configurations")

And what needs a broker: a throwaway CA and certificates (openssl), and
mosquitto on 127.0.0.1 with mutual TLS (mosquitto_tls)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

GUARD = 30  # seconds: only against hangs
CHILDREN = []  # processes started by a case; killed when it ends
ON_FAIL = []  # callables that print what a failure's reader needs (a daemon's log)
_scratch = {"dir": None, "what": "files"}


def scratch(prefix, what):
    """A new scratch directory; `what` names its contents in a failure's message."""
    _scratch["dir"] = tempfile.mkdtemp(prefix=prefix)
    _scratch["what"] = what
    return _scratch["dir"]


def _kill_children():
    """Kills what is still running; False when a child survives SIGKILL."""
    ok = True
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=GUARD)
            except subprocess.TimeoutExpired:
                print(f"FAIL: {p.args} does not die after SIGKILL", flush=True)
                ok = False
    return ok


def fail(msg):
    print("FAIL: " + msg, flush=True)
    for show in ON_FAIL:
        try:
            show()
        except Exception as e:  # a failure's report must not hide the failure
            print(f"(could not show more: {e})", flush=True)
    print(f"({_scratch['what']} kept in {_scratch['dir']})", flush=True)
    _kill_children()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def finish(case):
    """Runs case(); a timeout is a failure. The children are killed and,
    when the case passed, the scratch directory is removed."""
    try:
        case()
    except subprocess.TimeoutExpired as e:
        fail(f"timed out: {e}")
    finally:
        if not _kill_children():
            sys.exit(1)
    shutil.rmtree(_scratch["dir"], ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(tmp, name):
    """A CA (EC P-256, 2 days) in tmp; returns (key, certificate) paths."""
    key, crt = f"{tmp}/{name}.key", f"{tmp}/{name}.crt"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", crt, "-subj", f"/CN={name}", "-days", "2",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def make_cert(tmp, name, cn, ca, san=None):
    """A certificate for common name cn signed by ca, with subjectAltName san;
    its key readable by its owner only. Returns (key, certificate) paths."""
    key, csr, crt = f"{tmp}/{name}.key", f"{tmp}/{name}.csr", f"{tmp}/{name}.crt"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
    ext = f"{tmp}/{name}.ext"
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write(f"subjectAltName={san}\n")
    _openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
             "-out", crt, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return key, crt


class mosquitto_tls:
    """mosquitto on 127.0.0.1 with the server certificate `server`, requiring
    client certificates of `ca` (their common name is the user name for the
    ACL file `acl`), no Nagle delay (as iogate/mosquitto-iogate.conf);
    started, and listening, when constructed."""

    def __init__(self, tmp, ca, server, port=None, acl=None):
        self.port = port or free_port()
        self.log = f"{tmp}/mosquitto-{self.port}.log"
        conf = f"{tmp}/mosquitto-{self.port}.conf"
        with open(conf, "w") as f:
            if os.geteuid() == 0:
                f.write("user root\n")
            f.write(f"listener {self.port} 127.0.0.1\n"
                    f"cafile {ca[1]}\ncertfile {server[1]}\nkeyfile {server[0]}\n"
                    "require_certificate true\nuse_identity_as_username true\nset_tcp_nodelay true\n"
                    f"persistence false\nlog_dest file {self.log}\nlog_type all\n")
            if acl:
                f.write(f"acl_file {acl}\n")
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        CHILDREN.append(self.proc)
        deadline = time.monotonic() + GUARD
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                check(self.proc.poll() is None, "mosquitto exited: " + self.log_text())
                check(time.monotonic() < deadline, "mosquitto does not listen")
                time.sleep(0.05)

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def wait_log(self, text):
        deadline = time.monotonic() + GUARD
        while text not in self.log_text():
            check(time.monotonic() < deadline, f"mosquitto never logged {text!r}:\n" + self.log_text())
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def vm_guest_ready(*params):
    """In the test VM: loopback up (the guest has no network card) and
    iocard.ko loaded (LIBIO_KMOD_DIR/LIBIO_VM_SERIES/iocard.ko, with the
    module parameters params) unless it is."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if not os.path.exists("/sys/module/iocard"):
        kmod, series = os.environ.get("LIBIO_KMOD_DIR"), os.environ.get("LIBIO_VM_SERIES")
        check(kmod and series, "LIBIO_KMOD_DIR and LIBIO_VM_SERIES are needed to load iocard.ko")
        subprocess.run(["insmod", f"{kmod}/{series}/iocard.ko", *params], check=True, capture_output=True)
