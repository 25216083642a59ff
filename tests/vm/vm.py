#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""libio test VM: boot a Debian kernel under QEMU with the host root filesystem.

  vm.py kernels                 print the kernel matrix as resolved now
  vm.py fetch SERIES            download and unpack a kernel into the cache
  vm.py kdir SERIES             print the headers directory (KDIR) of a kernel
  vm.py debs SERIES [--image]   print the cached .debs of a kernel's headers
                                (and image): what the install tests install
  vm.py run --kernel SERIES [--serial] [--usb-serial] [--pci-board {msix,intx}]
            [--timeout S] [--root DIR [--root-writable | --root-disk [--disk-keep FILE]]] -- CMD...

SERIES is 6.1 (Debian 12), 6.12 (bookworm-backports), 6.12-rt (PREEMPT_RT,
bookworm-backports) or 6.12-trixie (Debian 13's own kernel, resolved with the
apt lists of the install tests' plain trixie root, tests/vm/install-rootfs).
Kernel packages are unpacked into the cache
(${XDG_CACHE_HOME:-~/.cache}/libio); nothing is installed into the system.

6.12-debug (and 6.1-debug) is built here, once: Debian's linux-source of the
6.12 (6.1) series' version, configured small with KASAN, lockdep, atomic-sleep
checks, debug objects and UBSAN (tests/vm/debug-kernel.config, built by
tests/vm/build-debug-kernel, everything the VM needs built in), cached under a
hash of the source version, the fragment and the build script. Its KDIR is the
built tree. Its guest gets 3 GiB and a 40-minute timeout unless told otherwise.

`run` boots the kernel with the host's / read-only over virtio-9p, tmpfs for
/run, /tmp, /var and $HOME, runs CMD as root in the current directory, prints
its output and exits with its status. The guest's kernel log is checked
afterwards: an oops, BUG, WARNING, lockup or panic fails the run whatever the
command's status. A guest that does not finish within --timeout is killed; the
console log is kept in --log-dir.

--root DIR boots into another root filesystem (the install test's plain Debian
12) the same way; the host's / is then read-only at /libio-host in the guest.
With --root-writable the guest writes into DIR itself, as a machine writes
to its disk, so that a second boot finds what the first installed (the
upgrade tests: a copy of a cached root); a kernel installed in DIR then
brings its own modules directory. With --root-disk the guest boots from an
ext4 image of DIR instead (made once per DIR, cached; virtio-blk, its writes
thrown away at exit): compiling and depmod read thousands of files, which
over 9p under TCG takes minutes (the install tests: DKMS's build of iocard
290 s over 9p). DIR must then hold the kernel's modules (its image installed).
With --disk-keep FILE the guest's writes are kept instead: FILE starts as a
copy of the image (sparse) and later boots with the same FILE find what the
earlier ones wrote (the upgrade tests' boots that follow one another).

--serial attaches pci-serial-4x (four 16550A UARTs), --usb-serial attaches
qemu-xhci with an FTDI usb-serial; each port is backed by a host socket. The
guest drives the far end of each cable through the virtio-serial port
/dev/virtio-ports/io.libio.cable (protocol in cable.py).

--pci-board msix|intx attaches the iocard PCI test board: QEMU's
ivshmem-doorbell (PCI 1af4:1110) as board0 behind PCIe root port rp0 of a q35
machine (pc otherwise), interrupting by MSI-X (intx, the spec's msi=off, is
refused: QEMU 7.2's ivshmem-doorbell has no such property). Its model
(tests/vm/pciboard.py) runs on the host as the ivshmem server; the guest
drives it, and unplugs and plugs it, with the cable agent's `board` orders.
"""

import argparse
import bisect
import contextlib
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cable  # noqa: E402
import pciboard  # noqa: E402

CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "libio")
SERIES = {
    # series: (headers metapackage, image metapackage or None, upstream prefix)
    "6.1": ("linux-headers-amd64", "linux-image-amd64", "6.1."),
    "6.12": ("linux-headers-amd64", "linux-image-amd64", "6.12."),
    "6.12-rt": ("linux-headers-rt-amd64", "linux-image-rt-amd64", "6.12."),
    "6.12-trixie": ("linux-headers-amd64", "linux-image-amd64", "6.12."),
}
# Kernels of another Debian release than the machine's: resolved and
# downloaded with the apt lists of that release's plain root, which
# tests/vm/install-rootfs builds once (same mirror as the machine's sources).
SERIES_SUITE = {"6.12-trixie": "trixie"}
# Debug kernels built from source: series -> the series whose version they build.
DEBUG_SERIES = {"6.12-debug": "6.12", "6.1-debug": "6.1"}
DEBUG_CONFIG = os.path.join(HERE, "debug-kernel.config")
DEBUG_BUILD = os.path.join(HERE, "build-debug-kernel")
# Modules the initramfs needs to reach the root filesystem over virtio-9p.
# The q35 machine of --pci-board needs no more: the PCIe port driver and both
# hotplug drivers (pciehp, acpiphp) are built into Debian's 6.1 and 6.12.
BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay"]
# And those of a guest booted from a disk image of its root (--root-disk):
# loaded only then (ext4 asks the crypto API for crc32c at every mount).
DISK_MODULES = ["virtio_blk", "crc32c_generic", "ext4"]
# Where a guest booted with --root sees the host's root filesystem.
HOST_MOUNT = "/libio-host"
# Kernel log lines that fail a run (the guest's dmesg, or its console on a panic).
BAD_LOG = re.compile(
    r"(Oops|BUG: |kernel BUG at|WARNING: |general protection fault|"
    r"soft lockup|hard LOCKUP|rcu_\w+ (self-)?detected stall|detected stalls on CPUs|"
    r"blocked for more than \d+ seconds|Kernel panic|UBSAN: |KASAN: |"
    r"list_(add|del) corruption|refcount_t: |"
    # lockdep's reports start with WARNING: or BUG: but for this one;
    # debug objects' reports with ODEBUG: (its self test excepted).
    r"INFO: trying to register non-static key|ODEBUG: (?!selftest passed))")


SUMMARY = []  # what log() said, kept in LOG_DIR/summary.log


def log(msg):
    SUMMARY.append(msg)
    print(f"vm: {msg}", file=sys.stderr, flush=True)


def die(msg, code=2):
    log(msg)
    sys.exit(code)


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


def version_newest(versions):
    best = None
    for v in versions:
        if best is None or subprocess.run(["dpkg", "--compare-versions", v, "gt", best]).returncode == 0:
            best = v
    return best


def where_the_cpus_are(agent, system_map, looks=5):
    """Each vCPU's instruction pointer, named from the kernel's System.map
    (the guest boots with nokaslr), a few times over: what a guest that
    stopped answering is doing (a CPU spinning shows the same function each
    time; a module's addresses have no name here). Never raises."""
    names = []
    try:
        with open(system_map) as f:
            for line in f:
                addr, kind, name = line.split()[:3]
                if kind in "tTwW":
                    names.append((int(addr, 16), name))
        names.sort()
    except (OSError, ValueError):
        pass
    starts = [a for a, _ in names]

    def name_of(ip):
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= 0xffffffffc0000000:
            return "(a module or not the kernel)"
        return f"{names[i][1]}+{ip - starts[i]:#x}"
    out = []
    try:
        for n in range(looks):
            text = agent._qmp({"execute": "human-monitor-command",
                               "arguments": {"command-line": "info registers -a"}}).get("return", "")
            cpus = re.findall(r"CPU#(\d+)\s*\nRAX=.*?RIP=([0-9a-f]+)", text, re.S)
            out.append(f"  look {n + 1}: " + "; ".join(
                f"CPU{c} {int(ip, 16):#x} {name_of(int(ip, 16))}" for c, ip in cpus))
            time.sleep(0.5)
    except Exception as e:  # a dump that fails must not hide the timeout
        out.append(f"  (QEMU's monitor did not answer: {e})")
    return "\n".join(out)


def apt_opts(series):
    """apt options that make apt-cache and apt-get see the series' release."""
    suite = SERIES_SUITE.get(series)
    if not suite:
        return []
    root = sh(os.path.join(HERE, "install-rootfs"), suite).strip()
    return ["-o", f"Dir={root}", "-o", "Dir::State::status=" + os.path.join(root, "var/lib/dpkg/status")]


def apt_depends(pkg, opts=()):
    out = subprocess.run(["apt-cache", *opts, "depends", "--no-recommends", "--no-suggests", pkg],
                         text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return re.findall(r"^\s*\|?Depends: (\S+)", out, re.M)


def resolve(series):
    """Newest Debian kernel of a series: (release, source version, package list)."""
    if series not in SERIES:
        die(f"unknown kernel series '{series}'; known: {', '.join(SERIES)}")
    hdr_meta, img_meta, prefix = SERIES[series]
    opts = apt_opts(series)
    out = subprocess.run(["apt-cache", *opts, "madison", hdr_meta], text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    versions = [f.split("|")[1].strip() for f in out.splitlines() if "|" in f]
    versions = [v for v in versions if v.startswith(prefix)]
    pinned = os.path.join(CACHE, "kernels", f"series-{series}")
    if not versions:
        if os.path.exists(pinned):  # offline: keep using what the cache has
            with open(pinned) as f:
                return json.load(f)
        die(f"no {hdr_meta} {prefix}x in the apt lists: run 'make deps' "
            "(it enables bookworm-backports on Debian 12)")
    ver = version_newest(versions)
    hdr = [d for d in apt_depends(f"{hdr_meta}={ver}", opts) if d.startswith("linux-headers-")][0]
    release = hdr[len("linux-headers-"):]
    pkgs = [hdr] + [d for d in apt_depends(hdr, opts)
                    if d.startswith("linux-headers-") or d.startswith("linux-kbuild-")]
    if img_meta:
        pkgs.append(f"linux-image-{release}")
    info = {"series": series, "release": release, "version": ver, "packages": sorted(set(pkgs))}
    os.makedirs(os.path.dirname(pinned), exist_ok=True)
    with open(pinned, "w") as f:
        json.dump(info, f)
    return info


def fetch(series):
    """Download and unpack a kernel into the cache once; return its root and release."""
    os.makedirs(CACHE, exist_ok=True)
    if series in DEBUG_SERIES:
        return fetch_debug(series)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs share the cache
        return fetch_locked(series)


def fetch_locked(series):
    info = resolve(series)
    release, ver = info["release"], info["version"]
    root = os.path.join(CACHE, "kernels", release)
    stamp = os.path.join(root, ".unpacked")
    want = "\n".join(f"{p}={ver}" for p in info["packages"])
    if os.path.exists(stamp) and open(stamp).read() == want:
        merged_usr(root, release)
        return root, release
    files = [download(p, ver, apt_opts(series)) for p in info["packages"]]
    log(f"unpacking {release} into {root}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for deb in files:
        subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    # Debian's arch headers include their -common tree by absolute path.
    for mk in glob.glob(os.path.join(root, "usr/src/linux-headers-*/Makefile")):
        text = open(mk).read()
        fixed = re.sub(r"^include /usr/src/", f"include {root}/usr/src/", text, flags=re.M)
        if fixed != text:
            with open(mk, "w") as f:
                f.write(fixed)
    merged_usr(root, release)
    moddir = os.path.join(root, "lib/modules", release)
    if os.path.isdir(os.path.join(moddir, "kernel")):
        subprocess.run(["depmod", "-b", root, release], check=True)
    with open(stamp, "w") as f:
        f.write(want)
    return root, release


def merged_usr(root, release):
    """Debian 13's kernel packages have their modules in /usr/lib/modules
    only: the unpacked root gets lib -> usr/lib, as a merged-/usr system has,
    so that depmod, the initramfs and guest-init find them at lib/modules."""
    lib = os.path.join(root, "lib")
    if not os.path.lexists(lib) and os.path.isdir(os.path.join(root, "usr/lib/modules")):
        os.symlink("usr/lib", lib)
        moddir = os.path.join(lib, "modules", release)
        if os.path.isdir(os.path.join(moddir, "kernel")):
            subprocess.run(["depmod", "-b", root, release], check=True)


def download(pkg, ver, opts=()):
    """The cached .deb of pkg=ver, downloaded (not installed) when missing."""
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    pattern = os.path.join(debs, f"{pkg}_{ver.replace(':', '%3a')}_*.deb")
    found = glob.glob(pattern)
    if not found:
        log(f"downloading {pkg}={ver}")
        subprocess.run(["apt-get", *opts, "download", "-q", "-o", "Acquire::Retries=5", "-o", "APT::Sandbox::User=root", f"{pkg}={ver}"],
                       cwd=debs, check=True, stdout=subprocess.DEVNULL)
        found = glob.glob(pattern)
        if not found:
            die(f"apt-get download {pkg}={ver} produced no file")
    return found[0]


def fetch_debug(series):
    """Build (once per content) a debug kernel from Debian's source; return its root and release."""
    base = DEBUG_SERIES[series]
    ver = resolve(base)["version"]
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deb = download(f"linux-source-{base}", ver)
    key = hashlib.sha256(b"\0".join([ver.encode(), open(DEBUG_CONFIG, "rb").read(),
                                     open(DEBUG_BUILD, "rb").read()])).hexdigest()[:16]
    root = os.path.join(CACHE, "kernels", f"{series}-{key}")
    done = os.path.join(root, "release")
    # A build takes most of an hour: it has a lock of its own, so other runs
    # that only need packaged kernels go on meanwhile.
    with open(os.path.join(CACHE, f".lock-{series}"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            log(f"building the {series} kernel ({ver}) into {root}; once per content")
            t0 = time.monotonic()
            if subprocess.run([DEBUG_BUILD, deb, DEBUG_CONFIG, root]).returncode != 0:
                die(f"building the {series} kernel failed (tree kept in {root})")
            log(f"{series} kernel built in {time.monotonic() - t0:.0f} s")
            for old in glob.glob(os.path.join(CACHE, "kernels", f"{series}-*")):
                if old != root:
                    shutil.rmtree(old, ignore_errors=True)
    return root, open(done).read().strip()


def kernel_debs(series, image):
    """The cached .deb files of a packaged kernel: headers, kbuild (and image)."""
    if series in DEBUG_SERIES or series not in SERIES:
        die(f"{series} is not a packaged kernel series; known: {', '.join(SERIES)}")
    fetch(series)
    info = resolve(series)
    return [download(p, info["version"], apt_opts(series)) for p in info["packages"]
            if image or not p.startswith("linux-image-")]


def kdir(series):
    if series in DEBUG_SERIES:
        return os.path.join(fetch(series)[0], "src")
    root, release = fetch(series)
    d = os.path.join(root, "usr/src", f"linux-headers-{release}")
    if not os.path.isfile(os.path.join(d, "Makefile")):
        die(f"{d} has no Makefile")
    return d


def module_closure(moddir, names):
    """Module files for names, dependencies first (from modules.dep)."""
    deps = {}
    if not os.path.exists(os.path.join(moddir, "modules.dep")):
        return []  # no modules: everything built in
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            deps[path] = rest.split()
    by_name = {re.sub(r"\.ko(\.\w+)?$", "", os.path.basename(p)).replace("-", "_"): p for p in deps}
    order = []

    def visit(p):
        for d in reversed(deps[p]):
            visit(d)
        if p not in order:
            order.append(p)
    for n in names:
        if n in by_name:  # absent means built in
            visit(by_name[n])
    return order


def read_module(path):
    data = open(path, "rb").read()
    if path.endswith(".xz"):
        import lzma
        data = lzma.decompress(data)
    elif path.endswith(".zst"):
        data = subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout
    elif path.endswith(".gz"):
        data = gzip.decompress(data)
    return data


def cpio_newc(entries):
    """A newc cpio archive from (name, mode, data) entries."""
    out = io.BytesIO()

    def pad():
        out.write(b"\0" * (-out.tell() % 4))
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{x:08x}" for x in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.write(hdr.encode() + nb)
        pad()
        out.write(data)
        pad()
    return out.getvalue()


def initramfs(root, release):
    """Build (once per content) the initramfs that mounts the host root and hands over."""
    moddir = os.path.join(root, "lib/modules", release)
    mods = module_closure(moddir, BOOT_MODULES)
    disk_mods = [m for m in module_closure(moddir, DISK_MODULES) if m not in mods]
    lock = open(os.path.join(CACHE, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    init = open(os.path.join(HERE, "initramfs-init")).read()
    busybox = open("/bin/busybox", "rb").read()
    key = hashlib.sha256(init.encode() + busybox + "\n".join(mods + ["disk"] + disk_mods).encode()).hexdigest()[:16]
    out = os.path.join(root, f"initramfs-{key}.cpio.gz")
    if os.path.exists(out):
        return out
    entries = [("bin", 0o40755, b""), ("dev", 0o40755, b""), ("proc", 0o40755, b""),
               ("sys", 0o40755, b""), ("newroot", 0o40755, b""), ("mod", 0o40755, b""),
               ("mod/disk", 0o40755, b""),
               ("lower", 0o40755, b""), ("rw", 0o40755, b""),
               ("bin/busybox", 0o100755, busybox), ("init", 0o100755, init.encode())]
    for d, ms in (("mod", mods), ("mod/disk", disk_mods)):  # loaded in this order
        for i, m in enumerate(ms):
            base = re.sub(r"(\.ko)\.\w+$", r"\1", os.path.basename(m))
            entries.append((f"{d}/{i:02d}-{base}", 0o100644, read_module(os.path.join(moddir, m))))
    for old in glob.glob(os.path.join(root, "initramfs-*.cpio.gz")):
        os.unlink(old)
    with open(out + ".tmp", "wb") as f:
        f.write(gzip.compress(cpio_newc(entries), 6))
    os.rename(out + ".tmp", out)
    return out


def root_disk(root, release):
    """An ext4 image of the root directory ROOT, made once (cached by ROOT's
    path and the time its .complete mark was made): the disk of --root-disk."""
    stamp = os.path.join(root, ".complete")
    if not os.path.isdir(os.path.join(root, "usr/lib/modules", release, "kernel")):
        die(f"--root-disk: {root} has no modules of {release} (install its image into the root)")
    when = os.stat(stamp if os.path.exists(stamp) else root).st_mtime_ns
    key = hashlib.sha256(f"{os.path.abspath(root)}\n{when}".encode()).hexdigest()[:16]
    disks = os.path.join(CACHE, "disks")
    os.makedirs(disks, exist_ok=True)
    name = os.path.basename(os.path.abspath(root))
    img = os.path.join(disks, f"{name}-{key}.ext4")
    lock = open(os.path.join(CACHE, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if os.path.exists(img):
        os.utime(img)
        return img
    for old in glob.glob(os.path.join(disks, "*.ext4")):
        if time.time() - os.stat(old).st_mtime > 86400:  # unused for a day
            os.unlink(old)
    used_kib = int(sh("du", "-sk", "--one-file-system", root).split()[0])
    size_kib = used_kib * 5 // 4 + 2 * 1024 * 1024  # room for what the guest writes; sparse on the host
    t0 = time.monotonic()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(img + ".tmp")
    sh("mke2fs", "-q", "-F", "-t", "ext4", "-O", "^has_journal,^metadata_csum,^orphan_file",
       "-L", "libio-root", "-d", root, img + ".tmp", f"{size_kib}k")
    os.rename(img + ".tmp", img)
    log(f"made the disk image of {root} ({used_kib // 1024} MiB) in {time.monotonic() - t0:.0f} s")
    return img


def boot_args(series):
    args = ["console=ttyS0,115200", "loglevel=5", "panic=-1", "8250.nr_uarts=16",
            "clocksource=tsc", "tsc=reliable", "no_timer_check", "nokaslr",
            "rcupdate.rcu_cpu_stall_timeout=60", "mitigations=off"]
    if series in DEBUG_SERIES:
        args.append("kasan_multi_shot")  # every KASAN report, not only the first
    return args


def scan_log(text):
    return [l for l in text.splitlines() if BAD_LOG.search(l)]


def run(opts):
    if opts.pci_board == "intx":
        # QEMU 7.2's ivshmem-doorbell has no msi property (the board spec's
        # msi=off): it always has MSI-X and drops its interrupts while the
        # guest has MSI-X off; only the legacy ivshmem device (removed in
        # QEMU 4.0) had INTx.
        die("--pci-board intx: QEMU's ivshmem-doorbell has no INTx mode (no msi=off property); "
            "it interrupts by MSI-X only")
    debug = opts.kernel in DEBUG_SERIES
    if opts.memory is None:
        opts.memory = 3072 if debug else 1024  # KASAN's shadow takes an eighth
    if opts.timeout is None:
        opts.timeout = 2400 if debug else 600
    root, release = fetch(opts.kernel)
    image = os.path.join(root, "boot", f"vmlinuz-{release}")
    if not os.path.exists(image):
        die(f"{opts.kernel} has headers only; it cannot boot")
    initrd = initramfs(root, release)
    if not shutil.which("qemu-system-x86_64"):
        die("qemu-system-x86_64 not found: run 'make deps'")
    for attempt in range(1, 4):
        status, crashed_early = boot(opts, root, release, image, initrd)
        if not crashed_early:
            return status
        # Multi-threaded TCG now and then trips the kernel's own int3 text
        # patching during early boot ("Oops: int3" in sched_clock_cpu and
        # similar, no module loaded yet). Nothing of ours has run then, so
        # the boot is repeated; a crash once anything of ours ran is a failure.
        log(f"the guest kernel crashed while booting, before any module or test ran (attempt {attempt}); "
            "booting again")
    return status


def crashed_before_init(con, booted):
    """True when the console shows a panic before the initramfs loaded any module."""
    if booted is not None or "Kernel panic" not in con:
        return False
    return all(not l.split("Modules linked in:", 1)[1].strip()
               for l in con.splitlines() if "Modules linked in:" in l)


def boot(opts, root, release, image, initrd):
    """One boot; returns (exit status, crashed before anything of ours ran)."""
    run_dir = tempfile.mkdtemp(prefix="libio-vm.")
    share = os.path.join(run_dir, "share")
    os.makedirs(share)
    log_dir = os.path.abspath(opts.log_dir or os.path.join(os.getcwd(), "vm-logs"))
    os.makedirs(log_dir, exist_ok=True)
    for old in ("summary.log", "output.log", "dmesg.log", "console.log"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(log_dir, old))
    console = os.path.join(log_dir, "console.log")
    with open(os.path.join(share, "cmd"), "w") as f:
        f.write("\0".join(opts.cmd))
    env = {k: v for k, v in os.environ.items()
           if k in ("PATH", "LANG", "LC_ALL", "TERM", "GTEST_COLOR", "GTEST_FILTER", "CTEST_OUTPUT_ON_FAILURE")
           or k.startswith("LIBIO_") or k.startswith("GTEST_")}
    with open(os.path.join(share, "env"), "w") as f:
        env["LIBIO_VM_SERIES"] = opts.kernel
        f.write("".join(f"{k}={v}\0" for k, v in env.items()))
    init = os.path.join(HERE, "guest-init")
    # With --root the guest boots into that directory instead, and sees the
    # host's / read-only at HOST_MOUNT, which prefixes every host path it gets.
    host = HOST_MOUNT if opts.root else ""
    cmdline = boot_args(opts.kernel) + [
        f"libio_init={host}{init}", f"libio_kroot={host}{root}", f"libio_release={release}",
        f"libio_cwd={host}{os.getcwd()}"] + ([f"libio_host={host}"] if host else []) + \
        (["libio_root_rw=1"] if opts.root_writable else []) + \
        (["libio_root_disk=1"] if opts.root_disk else [])
    qmp_path = os.path.join(run_dir, "qmp")
    ctl_path = os.path.join(run_dir, "cable")
    # The PCI test board needs PCI Express hotplug: q35 (only then, so every
    # other run keeps the machine it always had).
    machine = "q35" if opts.pci_board else "pc"
    qemu = ["qemu-system-x86_64", "-nodefaults", "-no-user-config", "-display", "none",
            "-accel", "tcg", "-machine", machine, "-cpu", "max",
            "-smp", str(opts.smp), "-m", str(opts.memory),
            "-no-reboot", "-kernel", image, "-initrd", initrd, "-append", " ".join(cmdline),
            "-chardev", f"file,id=con,path={console}", "-serial", "chardev:con",
            "-virtfs", f"local,path={share},mount_tag=libiovm,security_model=none",
            "-qmp", f"unix:{qmp_path},server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=cable,path={ctl_path},server=on,wait=off",
            "-device", "virtserialport,chardev=cable,name=io.libio.cable"]
    if opts.root_disk and opts.disk_keep:
        if not os.path.exists(opts.disk_keep):
            sh("cp", "--sparse=always", root_disk(opts.root, release), opts.disk_keep)
        qemu += ["-drive", f"file={os.path.abspath(opts.disk_keep)},format=raw,if=virtio,snapshot=off,"
                 "cache=unsafe,discard=unmap"]
    elif opts.root_disk:
        qemu += ["-drive", f"file={root_disk(opts.root, release)},format=raw,if=virtio,snapshot=on,"
                 "cache=unsafe,discard=unmap"]
    else:
        qemu += ["-virtfs", f"local,path={os.path.abspath(opts.root or '/')},mount_tag=hostroot,"
                 f"security_model=none,readonly={'off' if opts.root_writable else 'on'},multidevs=remap"]
    if opts.root:
        qemu += ["-virtfs", "local,path=/,mount_tag=libiohost,security_model=none,readonly=on,"
                 "multidevs=remap"]
    ports = {}
    if opts.serial:
        for i in range(4):
            ports[f"uart{i}"] = os.path.join(run_dir, f"uart{i}")
            qemu += ["-chardev", f"socket,id=uart{i},path={ports[f'uart{i}']},server=on,wait=off"]
        qemu += ["-device", "pci-serial-4x,chardev1=uart0,chardev2=uart1,chardev3=uart2,"
                 "chardev4=uart3"]
    if opts.usb_serial:
        ports["ftdi0"] = os.path.join(run_dir, "ftdi0")
        qemu += ["-chardev", f"socket,id=ftdi0,path={ports['ftdi0']},server=on,wait=off",
                 "-device", "qemu-xhci,id=xhci",
                 "-device", "usb-serial,id=ftdi0,bus=xhci.0,chardev=ftdi0,always-plugged=on"]
    board = None
    if opts.pci_board:
        # QEMU connects to the model's socket as it starts: the model listens first.
        # Hotplug on rp0 is QEMU 7.2's q35 default, ACPI PCI hotplug (the
        # guest's acpiphp takes the slot): device_del raises an ACPI eject
        # request, the guest's acpiphp removes the device and calls _EJ0, and
        # QEMU reports DEVICE_DELETED, 0.1 to 0.2 s under TCG on 6.1 and 6.12.
        # Native PCIe hotplug (ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off)
        # would go through pciehp's attention button, which waits 5 s for a
        # second press that cancels, on every unplug.
        board = pciboard.Board(os.path.join(run_dir, "ivshmem"), irq=opts.pci_board)
        qemu += ["-device", f"pcie-root-port,id={cable.BOARD_BUS},chassis=1,slot=1",
                 "-chardev", f"socket,id={cable.BOARD_CHARDEV},path={board.path}",
                 "-device", cable.board_device_arg(opts.pci_board)]
    log(f"booting {release} ({'+'.join(['base'] + [o for o, on in (('serial', opts.serial), ('usb-serial', opts.usb_serial), (f'pci-board-{opts.pci_board}', opts.pci_board)) if on])})")
    t0 = time.monotonic()
    qemu_env = None
    if board:
        # Works around QEMU's ivshmem unplug bug (pciboard.SHIM_SOURCE).
        preload = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), pciboard.qemu_shim(CACHE)]))
        qemu_env = dict(os.environ, LD_PRELOAD=preload)
    proc = subprocess.Popen(qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True, env=qemu_env)
    agent = cable.Agent(ctl_path, ports, qmp_path, board)
    threading.Thread(target=agent.serve, daemon=True).start()
    timed_out = False
    try:
        qemu_out, _ = proc.communicate(timeout=opts.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        found = []  # at most 20 s: a monitor that does not answer must not hold up the kill
        looker = threading.Thread(target=lambda: found.append(where_the_cpus_are(
            agent, os.path.join(root, "boot", f"System.map-{release}"))), daemon=True)
        looker.start()
        looker.join(20)
        where = found[0] if found else "  (QEMU's monitor did not answer within 20 s)"
        os.killpg(proc.pid, signal.SIGKILL)
        qemu_out, _ = proc.communicate()
    elapsed = time.monotonic() - t0
    agent.close()
    if board:
        board.close()

    def slurp(name):
        p = os.path.join(share, name)
        return open(p, errors="replace").read() if os.path.exists(p) else None
    output, status, dmesg, booted = slurp("output"), slurp("status"), slurp("dmesg"), slurp("booted")
    for name in ("output", "dmesg"):
        if os.path.exists(os.path.join(share, name)):
            shutil.copy(os.path.join(share, name), os.path.join(log_dir, name + ".log"))
    shutil.rmtree(run_dir, ignore_errors=True)
    if output:
        sys.stdout.write(output)
        sys.stdout.flush()
        SUMMARY.extend(l for l in output.splitlines()
                       if l.startswith(("===", "[  PASSED", "[  FAILED")) or re.match(r"^\d+ passed, \d+ failed", l))
    con = open(console, errors="replace").read() if os.path.exists(console) else ""
    if qemu_out and qemu_out.strip():
        log("qemu said: " + qemu_out.strip())
    if proc.returncode < 0 and not timed_out:
        log(f"qemu was killed by signal {signal.Signals(-proc.returncode).name}")
    if booted:
        log(f"{release}: guest up in {float(booted):.1f} s, whole run {elapsed:.1f} s")
    bad = scan_log(dmesg if dmesg is not None else con)
    if timed_out:
        log(f"TIMEOUT: the guest did not finish within {opts.timeout} s; console log kept at {console}")
        print("\n".join(con.splitlines()[-40:]), file=sys.stderr)
        log("where the guest's CPUs were (QEMU's registers, 5 looks 0.5 s apart; idle is a halt):")
        print(where, file=sys.stderr)
        with open(os.path.join(log_dir, "cpus.log"), "w") as f:
            f.write(where + "\n")
        return 124, False
    if bad and not timed_out and crashed_before_init(con, booted):
        for l in bad[:3]:
            print("  " + l, file=sys.stderr)
        return 125, True
    if bad:
        log(f"FAIL: the guest kernel log ({release}) reports:")
        for l in bad[:20]:
            print("  " + l, file=sys.stderr)
        log(f"full logs in {log_dir}")
        return 125, False
    if status is None:
        log(f"FAIL: the guest stopped without an exit status; console log kept at {console}")
        print("\n".join(con.splitlines()[-40:]), file=sys.stderr)
        return 126, False
    return int(status.strip() or 126), False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    sub.add_parser("kernels", help="print the kernel matrix")
    for verb in ("fetch", "kdir"):
        p = sub.add_parser(verb)
        p.add_argument("series", choices=sorted(SERIES) + sorted(DEBUG_SERIES))
    p = sub.add_parser("debs")
    p.add_argument("series", choices=sorted(SERIES))
    p.add_argument("--image", action="store_true", help="the image too, not only the headers")
    p = sub.add_parser("run", help="boot a kernel and run a command inside")
    p.add_argument("--kernel", required=True, choices=sorted(SERIES) + sorted(DEBUG_SERIES))
    p.add_argument("--serial", action="store_true", help="attach pci-serial-4x")
    p.add_argument("--usb-serial", action="store_true", help="attach qemu-xhci + FTDI usb-serial")
    p.add_argument("--pci-board", choices=("msix", "intx"),
                   help="attach the iocard PCI test board (q35 machine), interrupts by MSI-X or INTx")
    p.add_argument("--timeout", type=float, help="seconds before the guest is killed "
                   "(default 600, debug kernels 2400)")
    p.add_argument("--smp", type=int, default=2)
    p.add_argument("--memory", type=int, help="MiB (default 1024, debug kernels 3072)")
    p.add_argument("--log-dir", help="where console, output and dmesg logs are kept")
    p.add_argument("--root", metavar="DIR",
                   help="boot into the Debian root DIR instead of the host's / (still read-only "
                        f"under a tmpfs overlay); the host's / is then read-only at {HOST_MOUNT} "
                        "and CMD's paths are the guest's")
    p.add_argument("--root-writable", action="store_true",
                   help="with --root: the guest writes into DIR (no overlay), a second boot sees it")
    p.add_argument("--root-disk", action="store_true",
                   help="with --root: boot from an ext4 image of DIR (cached), its writes thrown away")
    p.add_argument("--disk-keep", metavar="FILE",
                   help="with --root-disk: the guest writes to FILE (made from the image if absent), kept")
    p.add_argument("cmd", nargs="+", help="command to run in the guest")
    opts = ap.parse_args()
    if opts.verb == "run" and opts.root_writable and not opts.root:
        ap.error("--root-writable needs --root DIR (the host's / is never written)")
    if opts.verb == "run" and opts.root_disk and (not opts.root or opts.root_writable):
        ap.error("--root-disk needs --root DIR and excludes --root-writable (the image's writes are thrown away)")
    if opts.verb == "run" and opts.disk_keep and not opts.root_disk:
        ap.error("--disk-keep needs --root-disk")
    if opts.verb == "kernels":
        for s in SERIES:
            info = resolve(s)
            print(f"{s}\t{info['release']}\t{info['version']}")
    elif opts.verb == "fetch":
        print(fetch(opts.series)[0])
    elif opts.verb == "kdir":
        print(kdir(opts.series))
    elif opts.verb == "debs":
        print("\n".join(kernel_debs(opts.series, opts.image)))
    else:
        status = run(opts)
        log(f"exit status {status}")
        with open(os.path.join(opts.log_dir or "vm-logs", "summary.log"), "w") as f:
            f.write("".join(f"{m}\n" for m in SUMMARY))
        sys.exit(status)


if __name__ == "__main__":
    main()
