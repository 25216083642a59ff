#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test of iocard.ko on virtual cards, as root in a disposable machine
# (the test VM): loads and unloads the module, drives cards through sysfs
# and libgpiod 2's tools.
#
#   smoke.sh PATH/TO/iocard.ko
#   IOCARD_CYCLES=100 smoke.sh ...   (load/unload cycles, default 20)
#   IOCARD_STORM_S=10 smoke.sh ...   (toggle storm seconds, default 3)
#
# Prints one line per check and "N passed, N failed" at the end; exits 1
# if a check failed.

KO=${1:-$IOCARD_KO}
CYCLES=${IOCARD_CYCLES:-20}
STORM_S=${IOCARD_STORM_S:-3}
CLS=/sys/class/iocard
TMP=$(mktemp -d)
pass=0
fail=0

if [ ! -f "$KO" ]; then
	echo "usage: $0 PATH/TO/iocard.ko" >&2
	exit 2
fi

ok() { pass=$((pass + 1)); echo "ok   - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
# check DESCRIPTION CMD...: CMD must succeed
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
# refuse DESCRIPTION CMD...: CMD must fail
refuse() {
	local d=$1; shift
	if "$@" 2>/dev/null; then bad "$d (accepted)"; else ok "$d"; fi
}
eq() { [ "$1" = "$2" ] || { echo "     got '$1', want '$2'"; return 1; }; }
wr() { printf '%s\n' "$2" 2>/dev/null > "$1"; }
rd() { cat "$CLS/$1/$2"; }
chip() { rd "$1" gpiochip; }
unload() { if [ -d /sys/module/iocard ]; then rmmod iocard; fi; }
# wait_exit PID SECONDS: true if PID exits within SECONDS
wait_exit() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
		sleep 0.1
	done
	return 1
}
stop() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; true; }
# wait_poll PID: true once PID sleeps in poll (within 20 s). A monitor has
# then made its requests: a line shows as requested while its interrupt is
# still being set up, and a chip taken away in that window leaves the
# requester waiting forever in 6.12's gpiolib.
wait_poll() {
	local i
	for ((i = 0; i < 200; i++)); do
		case $(cat "/proc/$1/wchan" 2>/dev/null) in *poll*) return 0 ;; esac
		sleep 0.1
	done
	return 1
}
# section NAME: a heading, with the seconds since the start
section() { echo "# $* [${SECONDS} s]"; }
# events FILE: the edge names of a gpiomon output, space separated
events() { awk '{printf "%s%s", sep, $2; sep=" "}' "$1"; }
# monotonic FILE: timestamps strictly increasing
monotonic() { awk 'NR > 1 && $1 <= prev { exit 1 } { prev = $1 }' "$1"; }

unload

section "module parameters"
refuse "sim=nope refused" insmod "$KO" sim=nope
check "unknown model reported" grep -q 'unknown model "nope"' <(dmesg)
refuse "sim=cos32, refused" insmod "$KO" sim=cos32,
refuse "sim=, refused" insmod "$KO" sim=,
refuse "scan_period_us=50 refused" insmod "$KO" scan_period_us=50
refuse "scan_period_us=2000000 refused" insmod "$KO" scan_period_us=2000000
refuse "max_sims=0 refused" insmod "$KO" max_sims=0
refuse "max_sims=257 refused" insmod "$KO" max_sims=257
refuse "cos_max_rate=5 refused" insmod "$KO" cos_max_rate=5
refuse "cos_max_rate=1000001 refused" insmod "$KO" cos_max_rate=1000001
refuse "sim= longer than max_sims refused" insmod "$KO" max_sims=2 \
	sim=cos32,cos32,cos32
check "too many cards reported" grep -q "more than max_sims=2" <(dmesg)
check "load with sim=mcc-pci-dio24,cos32,dio120" \
	insmod "$KO" sim=mcc-pci-dio24,cos32,dio120 || exit 1

section "identity attributes"
check "dio24 model" eq "$(rd iocard0 model)" mcc-pci-dio24
check "dio24 location" eq "$(rd iocard0 location)" sim:0
check "dio24 ports" eq "$(rd iocard0 ports)" "A:8:io B:8:io CL:4:io CH:4:io"
check "dio24 cos" eq "$(rd iocard0 cos)" scan
check "dio24 scan period default" eq "$(rd iocard0 scan_period_us)" 1000
check "dio24 has no spurious_irqs" test ! -e $CLS/iocard0/spurious_irqs
check "cos32 model" eq "$(rd iocard1 model)" cos32
check "cos32 ports" eq "$(rd iocard1 ports)" "IN:32:in OUT:32:out"
check "cos32 cos" eq "$(rd iocard1 cos)" hw
check "cos32 has no scan_period_us" test ! -e $CLS/iocard1/scan_period_us
check "cos32 spurious_irqs" eq "$(rd iocard1 spurious_irqs)" 0
check "cos32 cos_chatter" eq "$(rd iocard1 cos_chatter)" 0
check "dio24 has no cos_chatter" test ! -e $CLS/iocard0/cos_chatter
check "cos32 cos_max_rate from the module" eq "$(rd iocard1 cos_max_rate)" 5000
check "dio24 has no cos_max_rate" test ! -e $CLS/iocard0/cos_max_rate
refuse "cos_max_rate 5 refused" wr $CLS/iocard1/cos_max_rate 5
refuse "cos_max_rate 1000001 refused" wr $CLS/iocard1/cos_max_rate 1000001
refuse "cos_max_rate text refused" wr $CLS/iocard1/cos_max_rate fast
check "cos_max_rate kept after refusals" eq "$(rd iocard1 cos_max_rate)" 5000
check "cos_max_rate 0 (no guard)" wr $CLS/iocard1/cos_max_rate 0
check "cos_max_rate reads 0" eq "$(rd iocard1 cos_max_rate)" 0
check "cos_max_rate back to 5000" wr $CLS/iocard1/cos_max_rate 5000
check "dio120 ports" eq "$(rd iocard2 ports | cut -d' ' -f1,20)" \
	"P1A:8:io P5CH:4:io"
check "safe_state default" eq "$(rd iocard0 safe_state)" none
check "card parent is its platform device" \
	eq "$(basename "$(readlink -f $CLS/iocard0/device)")" iocard-sim.0
C0=$(chip iocard0)
C1=$(chip iocard1)
C2=$(chip iocard2)
check "gpiodetect lists the cards" \
	eq "$(gpiodetect | grep -c -E "^($C0 \[iocard0\] \(24|$C1 \[iocard1\] \(64|$C2 \[iocard2\] \(120) lines")" 3

section "PCI binding (no board in the VM: only the refusal path)"
pdev=
for d in /sys/bus/pci/devices/*; do
	# Not the PCI test board (vm.py --pci-board), which iocard would take.
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x1af4:0x1110 ] && continue
	if [ ! -e "$d/driver" ]; then pdev=$d; break; fi
done
if [ -n "$pdev" ]; then
	check "driver_override=iocard on $(basename "$pdev")" \
		wr "$pdev/driver_override" iocard
	wr /sys/bus/pci/drivers_probe "$(basename "$pdev")"
	check "device not in the board table stays unbound" \
		test ! -e "$pdev/driver"
	check "probe says why" grep -q "is not in iocard's board table" <(dmesg)
	printf '\n' > "$pdev/driver_override"
else
	echo "     (no unbound PCI device, skipped)"
fi

section "virtual card driver takes only its own devices"
fdev=
for d in /sys/bus/platform/devices/*; do
	case $(basename "$d") in iocard-sim.*) continue ;; esac
	if [ ! -e "$d/driver" ] && [ -w "$d/driver_override" ]; then
		fdev=$d
		break
	fi
done
if [ -n "$fdev" ]; then
	check "driver_override=iocard-sim on $(basename "$fdev")" \
		wr "$fdev/driver_override" iocard-sim
	wr /sys/bus/platform/drivers_probe "$(basename "$fdev")"
	check "foreign platform device stays unbound" test ! -e "$fdev/driver"
	check "sim probe says why" \
		grep -q "$(basename "$fdev").*not a virtual card created by iocard" \
		<(dmesg)
	printf '\n' > "$fdev/driver_override"
else
	echo "     (no unbound platform device, skipped)"
fi

section "gpioinfo"
gpioinfo -c "$C0" > "$TMP/info0"
gpioinfo -c "$C1" > "$TMP/info1"
check "dio24 line names" \
	eq "$(grep -o '"[A-Z0-9]*"' "$TMP/info0" | tr -d '"' | tr '\n' ' ')" \
	"A0 A1 A2 A3 A4 A5 A6 A7 B0 B1 B2 B3 B4 B5 B6 B7 CL0 CL1 CL2 CL3 CH4 CH5 CH6 CH7 "
check "dio24 starts as inputs" eq "$(grep -c input "$TMP/info0")" 24
check "cos32 IN0 input" grep -q '"IN0".*input' "$TMP/info1"
check "cos32 OUT31 output" grep -q '"OUT31".*output' "$TMP/info1"

section "fixed directions"
refuse "cos32 input cannot drive" gpioset -c "$C1" -t 0 IN0=1
refuse "cos32 output cannot read as input" gpioget -c "$C1" OUT0
gpioset -c "$C0" A0=1 &
holder=$!
sleep 0.5
refuse "8255: other line of a port held as output cannot be input" \
	gpioget -c "$C0" A1
check "8255: other port still free" gpioget -c "$C0" B0
stop $holder
check "8255: port free again after release" gpioget -c "$C0" A1

section "port-wide set/get, loopback"
check "dio24 loopback on" wr $CLS/iocard0/sim_loopback 1
gpioset -c "$C0" A0=1 A1=0 A2=1 A3=0 A4=0 A5=1 A6=0 A7=1 CL0=1 CL3=1 &
holder=$!
sleep 0.5
check "dio24 B reads A through loopback" \
	eq "$(gpioget -c "$C0" --numeric B0 B1 B2 B3 B4 B5 B6 B7)" \
	"1 0 1 0 0 1 0 1"
check "dio24 CH reads CL through loopback" \
	eq "$(gpioget -c "$C0" --numeric CH4 CH5 CH6 CH7)" "1 0 0 1"
check "dio24 sim_outputs" eq "$(rd iocard0 sim_outputs)" 0900a5
stop $holder
check "dio24 outputs kept after release" eq "$(rd iocard0 sim_outputs)" 0900a5
check "cos32 loopback on" wr $CLS/iocard1/sim_loopback 1
gpioset -c "$C1" OUT0=1 OUT1=1 OUT31=1 &
holder=$!
sleep 0.5
check "cos32 IN reads OUT through loopback" \
	eq "$(gpioget -c "$C1" --numeric IN0 IN1 IN2 IN31)" "1 1 0 1"
check "cos32 sim_outputs" eq "$(rd iocard1 sim_outputs)" 80000003,00000000
stop $holder
check "cos32 outputs kept after release" \
	eq "$(rd iocard1 sim_outputs)" 80000003,00000000
gpioset -c "$C1" -t 0 OUT0=0 OUT1=0 OUT31=0

section "edge events"
gpiomon -c "$C1" -n 4 IN5 > "$TMP/ev1" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
gpioset -c "$C1" -t 100ms,100ms,100ms,0 OUT5=1
check "cos32 (hw COS) gets 4 edges" wait_exit $mon 10
check "cos32 edges alternate" \
	eq "$(events "$TMP/ev1")" "rising falling rising falling"
check "cos32 timestamps monotonic" monotonic "$TMP/ev1"
stop $mon

gpiomon -c "$C0" -n 4 B3 > "$TMP/ev0" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
gpioset -c "$C0" -t 100ms,100ms,100ms,0 A3=1
check "dio24 (scanner) gets 4 edges" wait_exit $mon 10
check "dio24 edges alternate" \
	eq "$(events "$TMP/ev0")" "rising falling rising falling"
check "dio24 timestamps monotonic" monotonic "$TMP/ev0"
stop $mon

check "cos32 loopback off" wr $CLS/iocard1/sim_loopback 0
gpiomon -c "$C1" -e rising -n 2 IN7 > "$TMP/ev2" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
for v in 80 0 80 0 80; do wr $CLS/iocard1/sim_inputs $v; sleep 0.1; done
check "sim_inputs: rising filter gets 2 events" wait_exit $mon 10
check "sim_inputs: only rising" eq "$(events "$TMP/ev2")" "rising rising"
stop $mon
check "sim_inputs reads back" eq "$(rd iocard1 sim_inputs)" 00000000,00000080

gpiomon -c "$C2" -n 1 P5A0 > "$TMP/ev3" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
wr $CLS/iocard2/sim_inputs 1,00000000,00000000,00000000
check "dio120 line 96 (mask > 64 bits) gets an edge" wait_exit $mon 10
check "dio120 edge is rising" eq "$(events "$TMP/ev3")" rising
stop $mon

section "port direction lock"
check "port_lock default" eq "$(rd iocard0 port_lock)" none
check "no port_lock on fixed-direction cards" test ! -e $CLS/iocard1/port_lock
for v in "Z out" "A sideways" "A" "" "A out extra" "CL" "out A"; do
	refuse "port_lock '$v' refused" wr $CLS/iocard0/port_lock "$v"
done
check "lock port A as output" wr $CLS/iocard0/port_lock "A out"
check "port_lock reads back" eq "$(rd iocard0 port_lock)" "A:out"
refuse "A0 as input refused while A is locked" gpioget -c "$C0" A0
check "A0 as output allowed" gpioset -c "$C0" -t 0 A0=1
check "lock port CL as input too" wr $CLS/iocard0/port_lock "CL in"
check "both locks read back" eq "$(rd iocard0 port_lock)" "A:out CL:in"
gpiomon -c "$C0" B0 > /dev/null 2>&1 &
mon=$!
sleep 0.5
refuse "locking B as output under a waiting input refused" \
	wr $CLS/iocard0/port_lock "B out"
stop $mon
check "free A" wr $CLS/iocard0/port_lock "A free"
check "free CL" wr $CLS/iocard0/port_lock "CL free"
check "port_lock none again" eq "$(rd iocard0 port_lock)" none
check "A0 as input again" gpioget -c "$C0" A0

section "sysfs refuses bad writes"
for v in 0 99 abc 1000001 -5 ""; do
	refuse "scan_period_us '$v' refused" wr $CLS/iocard0/scan_period_us "$v"
done
check "scan_period_us unchanged" eq "$(rd iocard0 scan_period_us)" 1000
check "scan_period_us 500 accepted" wr $CLS/iocard0/scan_period_us 500
check "scan_period_us reads 500" eq "$(rd iocard0 scan_period_us)" 500
refuse "safe_state 'zz' refused" wr $CLS/iocard0/safe_state zz
refuse "safe_state too wide refused" wr $CLS/iocard0/safe_state 1ffffff
refuse "safe_state on input-only line refused" wr $CLS/iocard1/safe_state 1
for v in "" "," "ff,,0" "ff 0" "000000001"; do
	refuse "safe_state '$v' refused" wr $CLS/iocard1/safe_state "$v"
done
check "safe_state unchanged" eq "$(rd iocard1 safe_state)" none
check "safe_state on outputs accepted" \
	wr $CLS/iocard1/safe_state ff,00000000
check "safe_state reads back" eq "$(rd iocard1 safe_state)" 000000ff,00000000
check "safe_state none accepted" wr $CLS/iocard1/safe_state none
refuse "sim_inputs 'zz' refused" wr $CLS/iocard0/sim_inputs zz
refuse "sim_inputs too wide refused" wr $CLS/iocard0/sim_inputs 1000000
refuse "sim_inputs on output-only line refused" \
	wr $CLS/iocard1/sim_inputs 1,00000000
refuse "sim_inputs empty refused" wr $CLS/iocard1/sim_inputs ""
check "sim_inputs unchanged" eq "$(rd iocard1 sim_inputs)" 00000000,00000080
for v in maybe 10 yeah 1x "" Y; do
	refuse "sim_loopback '$v' refused" wr $CLS/iocard1/sim_loopback "$v"
done
check "sim_loopback unchanged" eq "$(rd iocard1 sim_loopback)" 0
check "sim_loopback 'on' accepted" wr $CLS/iocard1/sim_loopback on
check "sim_loopback reads 1" eq "$(rd iocard1 sim_loopback)" 1
check "sim_loopback 'n' accepted" wr $CLS/iocard1/sim_loopback n
check "sim_loopback reads 0" eq "$(rd iocard1 sim_loopback)" 0
refuse "model is read-only" wr $CLS/iocard0/model x
for v in nope "cos32 x" "cos32 -1" "" "cos32 1 2" "cos32 +7" "cos32 07" \
	test-ivshmem-cos32; do
	refuse "new_sim '$v' refused" wr $CLS/new_sim "$v"
done
for v in foo iocard iocard0x iocard99 "" iocard+0 iocard00 iocard-0 \
	"iocard 0"; do
	refuse "delete_sim '$v' refused" wr $CLS/delete_sim "$v"
done
check "no card was added or removed" \
	eq "$(ls -d $CLS/iocard* | wc -l)" 3

section "virtual cards at run time"
uevents=
if command -v udevadm > /dev/null; then
	timeout 5 udevadm monitor --kernel --subsystem-match=iocard \
		> "$TMP/uevents" 2>&1 &
	uevents=$!
	sleep 1
fi
check "new_sim 'cos32 7'" wr $CLS/new_sim "cos32 7"
if [ -n "$uevents" ]; then
	wait $uevents
	check "change uevent after the gpiochip was added" \
		grep -q 'change.*/iocard/iocard7 (iocard)' "$TMP/uevents"
fi
check "iocard7 is sim:7" eq "$(rd iocard7 location)" sim:7
refuse "new_sim 'cos32 7' again refused" wr $CLS/new_sim "cos32 7"
check "new_sim 'mcc-pci-dio48h' picks a free number" \
	wr $CLS/new_sim mcc-pci-dio48h
check "dio48h is iocard3" eq "$(rd iocard3 model)" mcc-pci-dio48h
check "safe_state set on iocard7" wr $CLS/iocard7/safe_state 5,00000000
check "delete_sim iocard7" wr $CLS/delete_sim iocard7
check "iocard7 gone" test ! -e $CLS/iocard7
check "safe state applied at removal" \
	grep -q "iocard7: outputs set to safe state 00000005,00000000" <(dmesg)
check "delete_sim iocard3" wr $CLS/delete_sim iocard3

section "removal while in use"
# Every kernel: the card goes, each waiter is woken with an error, and once
# they let go the module's reference count is back to 0.
refcnt() { cat /sys/module/iocard/refcnt; }
refs0=$(refcnt)
wr $CLS/new_sim "cos32 8"
gpiomon -c "$(chip iocard8)" IN0 > /dev/null 2>&1 &
mon=$!
v1mon=
if [ -n "${LIBIO_GPIOD1:-}" ]; then
	# Debian 12's own gpiomon 1.6, on the GPIO uAPI v1.
	LD_LIBRARY_PATH=$LIBIO_GPIOD1/usr/lib/x86_64-linux-gnu \
		"$LIBIO_GPIOD1/usr/bin/gpiomon" "$(chip iocard8)" 1 > /dev/null 2>&1 &
	v1mon=$!
fi
check "gpiomon waits" wait_poll $mon
[ -n "$v1mon" ] && check "gpiomon 1.6 waits" wait_poll $v1mon
check "delete cos32 while gpiomon waits" wr $CLS/delete_sim iocard8
check "gpiomon returns after removal" wait_exit $mon 10
if [ -n "$v1mon" ]; then
	check "gpiomon 1.6 (uAPI v1) returns after removal" wait_exit $v1mon 10
fi
stop $mon
[ -n "$v1mon" ] && stop $v1mon
wr $CLS/new_sim "mcc-pci-dio24 9"
C9=$(chip iocard9)
gpiomon -c "$C9" B0 > /dev/null 2>&1 &
mon=$!
gpioset -c "$C9" A0=1 > /dev/null 2>&1 &
holder=$!
check "gpiomon waits (scanner)" wait_poll $mon
sleep 1
check "delete dio24 while lines are held and scanned" \
	wr $CLS/delete_sim iocard9
check "gpiomon returns after removal (scanner)" wait_exit $mon 10
stop $mon
stop $holder
check "module reference count back after the users let go" \
	eq "$(refcnt)" "$refs0"
check "cards left" eq "$(ls -d $CLS/iocard* | tr '\n' ' ')" \
	"$CLS/iocard0 $CLS/iocard1 $CLS/iocard2 "
gpioinfo -c "$C2" > /dev/null &
sleep 0.2
check "new card while another chip is open" wr $CLS/new_sim "cos32 10"
check "delete it" wr $CLS/delete_sim iocard10

gpioset -c "$C0" A0=1 &
holder=$!
sleep 0.5
refuse "rmmod refused while a line is held" rmmod iocard
stop $holder
check "rmmod after release" rmmod iocard

section "max_sims"
check "load with max_sims=2 sim=cos32" insmod "$KO" max_sims=2 sim=cos32
check "max_sims reads 2" eq "$(cat /sys/module/iocard/parameters/max_sims)" 2
check "second card accepted" wr $CLS/new_sim dio120
check "third card refused with ENOSPC" \
	eq "$(printf 'cos32\n' 2>&1 > $CLS/new_sim | grep -c 'No space left')" 1
check "refusal logged" grep -q "2 virtual cards exist, max_sims=2" <(dmesg)
check "still two cards" eq "$(ls -d $CLS/iocard* | wc -l)" 2
check "delete one" wr $CLS/delete_sim iocard1
check "a card fits again" wr $CLS/new_sim cos32
check "unload" rmmod iocard

section "chatter guard"
check "load with cos_max_rate=100 sim=cos32" \
	insmod "$KO" cos_max_rate=100 sim=cos32
wr $CLS/iocard0/sim_loopback 1
gpiomon -c "$(chip iocard0)" IN0 > "$TMP/chat" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
timeout 1 gpioset -c "$(chip iocard0)" -t 1ms OUT0=1
check "chattering line turned off once" eq "$(rd iocard0 cos_chatter)" 1
check "chatter logged" \
	grep -q "iocard0: line 0 changes more than 100 times a second" <(dmesg)
n=$(wc -l < "$TMP/chat")
gpioset -c "$(chip iocard0)" -t 50ms,0 OUT0=0
sleep 0.5
check "no events once turned off" eq "$(wc -l < "$TMP/chat")" "$n"
stop $mon
gpiomon -c "$(chip iocard0)" -n 2 IN0 > "$TMP/chat2" &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
gpioset -c "$(chip iocard0)" -t 100ms,100ms,0 OUT0=1
check "requested again: events flow" wait_exit $mon 10
stop $mon
check "card's guard off" wr $CLS/iocard0/cos_max_rate 0
# 100 changes at 1 kHz: a guard of 100/s would let 11 through, then turn off.
gpiomon -c "$(chip iocard0)" -n 12 IN0 > /dev/null &
mon=$!
wait_poll $mon || echo "     gpiomon did not start waiting"
gpioset -c "$(chip iocard0)" -t "$(printf '1ms,%.0s' $(seq 99))0" OUT0=1
check "guard off: more events than a guard lets through" wait_exit $mon 10
check "guard off: not turned off" eq "$(rd iocard0 cos_chatter)" 1
stop $mon
check "unload" rmmod iocard

section "toggle storm (${STORM_S}s)"
insmod "$KO" sim=cos32,mcc-pci-dio24 scan_period_us=100
wr $CLS/iocard0/sim_loopback 1
wr $CLS/iocard1/sim_loopback 1
gpiomon -c "$(chip iocard0)" -q IN0 &
mon0=$!
gpiomon -c "$(chip iocard1)" -F x B0 > "$TMP/storm1" &
mon1=$!
wait_poll $mon0 && wait_poll $mon1 || echo "     gpiomon did not start waiting"
timeout "$STORM_S" gpioset -c "$(chip iocard0)" -t 1ms OUT0=1
timeout "$STORM_S" gpioset -c "$(chip iocard1)" -t 1ms A0=1
check "guest responsive after storm" eq "$(echo alive)" alive
check "scanner saw storm edges" test "$(wc -l < "$TMP/storm1")" -gt 10
stop $mon0
stop $mon1
check "rmmod after storm" rmmod iocard

check "load with claim=1" insmod "$KO" claim=1
check "pci driver registered" test -d /sys/bus/pci/drivers/iocard
check "pci driver has an unbind attribute" \
	test -e /sys/bus/pci/drivers/iocard/unbind
check "unload" rmmod iocard

section "$CYCLES load/unload cycles"
n=0
for ((i = 0; i < CYCLES; i++)); do
	insmod "$KO" sim=cos32,mcc-pci-dio24,dio120 || break
	gpiodetect > /dev/null
	rmmod iocard || break
	n=$((n + 1))
done
check "$n of $CYCLES cycles" eq "$n" "$CYCLES"

section "kernel log"
dmesg > "$TMP/dmesg"
check "no oops, BUG, WARNING or lockup" \
	eq "$(grep -c -E 'Oops|BUG:|WARNING:|lockup|Call Trace' "$TMP/dmesg")" 0

rm -rf "$TMP"
unload
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
