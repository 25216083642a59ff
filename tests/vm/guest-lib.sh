# SPDX-License-Identifier: MIT
# Shell functions of the guest scripts of the package tests
# (tests/vm/*-test-guest), sourced by bash.
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
failed=0
t0=$SECONDS
step() { echo "=== $* [$((SECONDS - t0)) s]"; }
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION COMMAND...: the command must succeed
	local what=$1; shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
installed() { dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed; }
# apt_get VERB ARGS...: apt-get VERB, as an administrator runs it, its output
# indented after the seconds since the guest's script began (where the time
# goes: unpacking, DKMS's build, depmod, triggers), also kept in /tmp/apt.out;
# its status.
# (unsafe-io: no fsync per file, which only costs time in a VM that is thrown
# away; INITRD=No: a kernel image installs without an initramfs of its own,
# since vm.py boots every kernel with the initramfs it makes, and mkinitramfs
# takes minutes under TCG, once more at DKMS's trigger)
apt_get() {
	local verb=$1; shift
	INITRD=No apt-get "$verb" -y -q --no-install-recommends -o Dpkg::Progress-Fancy=0 \
		-o Dpkg::Options::=--force-unsafe-io "$@" 2>&1 | tee /tmp/apt.out |
		while IFS= read -r line; do printf '%5d %s\n' "$SECONDS" "$line"; done
}
