#!/usr/bin/env bash
# Self-test of tests/lab/lab.sh: boots a 2-host lab and, at the same time, a
# 1-host one; checks ssh, systemd as PID 1, the lab network and its isolation,
# D-Bus, unshare -n, file capabilities on the overlay, --bind-ro, reboot-host
# and start-host, Ansible; then that `down` leaves nothing behind, that a
# failed or interrupted `up` cleans up after itself and never touches another
# lab.  Prints "N passed, N failed"; exits non-zero on failure.
#
#   tests/lab/selftest.sh [LAB]      (default LAB: labtest-PID; also uses LAB-b, LAB-i)
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
setup_for lab

lab="${1:-labtest-$$}" # per run: never another run's lab
other="$lab-b"
intr="$lab-i"
L="$REPO_ROOT/tests/lab/lab.sh"
state_root="${LAB_STATE:-/var/tmp/chezlepro-lab}"
work="$(mktemp -d /tmp/lab-selftest.XXXXXX)"

cleanup() {
	local l
	for l in "$lab" "$other" "$intr"; do "$L" down --name "$l" >/dev/null 2>&1 || echo "cleanup: down $l failed" >&2; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check DESC CMD...: passes when CMD succeeds.
check() {
	local desc="$1"
	shift
	if "$@" >"$work/out" 2>&1; then pass "$desc"; else
		fail "$desc: $(tail -n 5 "$work/out" | paste -sd'|' -)"
	fi
}
# expect DESC WANT CMD...: passes when CMD prints exactly WANT.
expect() {
	local desc="$1" want="$2" got
	shift 2
	got="$("$@" 2>"$work/err")" || true
	if [ "$got" = "$want" ]; then pass "$desc"; else
		fail "$desc: want '$want', got '$got' $(tail -n 3 "$work/err" | paste -sd'|' -)"
	fi
}
on() { # on LAB HOST CMD: a command inside a lab host
	local l="$1" h="$2"
	shift 2
	"$L" ssh --name "$l" "$h" "$@"
}
ms() { date +%s%3N; }

# snapshot LAB: what the lab made, read before `down` (pids with start times,
# addresses), to check afterwards that none of it survives.
snapshot() {
	local l="$1" st="$state_root/$1" f p cg
	{
		for f in "$st"/hosts/*/pid; do if [ -f "$f" ]; then cat "$f"; fi; done
		for cg in /sys/fs/cgroup/unified/nspawn-"$l"-h* /sys/fs/cgroup/systemd/nspawn-"$l"-h* /sys/fs/cgroup/nspawn-"$l"-h*; do
			[ -d "$cg" ] || continue
			find "$cg" -name cgroup.procs -exec cat {} + | while read -r p; do
				printf '%s %s\n' "$p" "$(awk '{sub(/.*\) /, ""); print $20}' "/proc/$p/stat" 2>/dev/null)"
			done
		done
	} | sort -u >"$work/procs.$l"
	sed -n 's/^SUBNET=//p' "$st/lab.env" >"$work/subnet.$l"
}

alive() { # pid start: that very process still runs (zombies are gone)
	local stat f
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	read -r -a f <<<"${stat##*) }"
	[ "${f[19]}" = "$2" ] && [ "${f[0]}" != Z ]
}

# leftovers LAB: prints anything of the lab that survives; silent when none.
leftovers() {
	local l="$1" st="$state_root/$1" p s a m
	ip netns list | awk -v p="chezlepro-$l-h" 'index($1, p) == 1 { print "netns " $1 }'
	for a in /sys/class/net/*/ifalias; do
		case "$(cat "$a")" in "chezlepro-lab:$l" | "chezlepro-lab:$l:"*) echo "link ${a%/ifalias}" ;; esac
	done
	if [ -s "$work/subnet.$l" ]; then
		s="$(cat "$work/subnet.$l")"
		ip link show "chzlab$s" >/dev/null 2>&1 && echo "bridge chzlab$s"
		ip -o link show | awk -v p="chzlab${s}h" '{ sub(/:$/, "", $2); sub(/@.*/, "", $2) } index($2, p) == 1 { print "veth " $2 }'
	fi
	awk -v d="$st" '$5 == d || index($5, d "/") == 1 { print "mount " $5 }' /proc/self/mountinfo
	for m in /sys/fs/cgroup/unified/nspawn-"$l"-h* /sys/fs/cgroup/systemd/nspawn-"$l"-h* /sys/fs/cgroup/nspawn-"$l"-h*; do
		[ -e "$m" ] && echo "cgroup $m"
	done
	if [ -f "$work/procs.$l" ]; then
		while read -r p s; do alive "$p" "$s" && echo "process $p $(tr '\0' ' ' <"/proc/$p/cmdline")"; done <"$work/procs.$l"
	fi
	for p in /proc/[0-9]*; do
		grep -qaF "$st/cm/" "$p/cmdline" 2>/dev/null && echo "ssh master ${p#/proc/}"
	done
	[ -e "$st" ] && echo "state dir $st"
	[ -L "${LAB_RUN:-/run/chezlepro-lab}/labs/$l" ] && echo "registry entry $l"
	return 0
}
check_clean() { # DESC LAB
	local left
	left="$(leftovers "$2")"
	if [ -z "$left" ]; then pass "$1"; else fail "$1: $(paste -sd';' - <<<"$left")"; fi
}

# ------------------------------------------------------------------ up ----
mkdir -p "$work/bind"
echo "from the controller" >"$work/bind/file"
t0="$(ms)"
"$L" up --name "$lab" --hosts 2 --bind-ro "$work/bind:/mnt/lab-bind" >"$work/up.out" 2>"$work/up.err" &
up_a=$!
# The other lab gets a unit that fails at boot (runtime units dir, bound
# read-only): up must accept the degraded host and name the unit.
mkdir -p "$work/units/multi-user.target.wants"
printf '[Unit]\nDescription=fails on purpose\n[Service]\nType=oneshot\nExecStart=/bin/false\n' >"$work/units/lab-selftest-fail.service"
ln -s ../lab-selftest-fail.service "$work/units/multi-user.target.wants/lab-selftest-fail.service"
"$L" up --name "$other" --hosts 1 --bind-ro "$work/units:/run/systemd/system" >"$work/up-b.out" 2>"$work/up-b.err" &
up_b=$!
rc_a=0 rc_b=0
wait "$up_a" || rc_a=$?
wait "$up_b" || rc_b=$?
echo "two labs (2 + 1 hosts) up concurrently in $(($(ms) - t0)) ms"
inv="$(tail -n1 "$work/up.out")"
if [ "$rc_a" -eq 0 ] && [ "$inv" = "$state_root/$lab/inventory.ini" ] && [ -f "$inv" ]; then
	pass "up $lab prints its inventory path last"
else
	fail "up $lab (rc $rc_a): $(tail -n 20 "$work/up.err")"
	summary
	exit 1
fi
if [ "$rc_b" -eq 0 ]; then pass "up $other at the same time"; else
	fail "up $other (rc $rc_b): $(tail -n 5 "$work/up-b.err" | paste -sd'|' -)"
fi
check "up reports a degraded host and its failed unit" \
	grep -q 'h1 is up but degraded; failed units: lab-selftest-fail.service' "$work/up-b.err"
addr() { sed -n "s/^$2 ansible_host=\([0-9.]*\).*/\1/p" "$state_root/$1/inventory.ini"; }
a1="$(addr "$lab" h1)"
a2="$(addr "$lab" h2)"
b1="$(addr "$other" h1)"
if [ "${a1%.*}" != "${b1%.*}" ] && [[ $a1 == 198.1[89].* ]] && [[ $b1 == 198.1[89].* ]]; then
	pass "labs on distinct /24s of 198.18.0.0/15 ($a1, $b1)"
else
	fail "lab addresses: $a1 and $b1"
fi
check "inventory: vars for Ansible" grep -q -e '^lab_bridge_address=198\.1[89]\.' "$inv"
check "inventory: ControlPath in the state dir" grep -qF "ControlPath=$state_root/$lab/cm/%h" "$inv"

# ------------------------------------------------------- inside a host ----
expect "ssh h1" ok on "$lab" h1 echo ok
expect "systemd is PID 1 (h1)" systemd on "$lab" h1 ps -p 1 -o comm=
expect "systemd running (h1)" running on "$lab" h1 systemctl is-system-running
expect "systemd running (h2)" running on "$lab" h2 systemctl is-system-running
expect "hostname" h2 on "$lab" h2 hostname
check "h1 pings h2 by name" on "$lab" h1 ping -c1 -W2 h2
check "h1 pings h2 by address" on "$lab" h1 ping -c1 -W2 "$a2"
expect "h1 reaches sshd on h2 over TCP" SSH-2.0 on "$lab" h1 'exec 3<>/dev/tcp/h2/22; head -c7 <&3'
check "h1 pings the lab bridge" on "$lab" h1 ping -c1 -W2 lab-bridge
expect "no default route in a host" "" on "$lab" h1 ip -4 route show default
check "no route out of the lab" on "$lab" h1 '! ip route get 192.0.2.1'
check "no path to another lab" on "$lab" h1 "! ping -c1 -W1 $b1"
bridge="$(sed -n 's/^BRIDGE=//p' "$state_root/$lab/lab.env")"
expect "the bridge forwards nothing (IPv4 forwarding off, no IPv6)" "0 1" \
	bash -c "cat /proc/sys/net/ipv4/conf/$bridge/forwarding /proc/sys/net/ipv6/conf/$bridge/disable_ipv6 | paste -sd' ' -"
expect "D-Bus call to systemd (busctl)" 'o "/org/freedesktop/systemd1/unit/ssh_2eservice"' \
	on "$lab" h1 busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager GetUnit s ssh.service
expect "unshare -n (a network-less namespace)" 1 on "$lab" h1 'unshare -n ip -o link | wc -l'
expect "setcap on a new file" "/root/capped cap_net_raw=ep" on "$lab" h1 'cp /bin/true /root/capped && setcap cap_net_raw+ep /root/capped && getcap /root/capped'
expect "setcap on a file of the lower layer" "/usr/bin/ls cap_net_bind_service=ep" on "$lab" h1 'setcap cap_net_bind_service+ep /usr/bin/ls && getcap /usr/bin/ls'
rootfs="$(sed -n 's/^ROOTFS=//p' "$state_root/$lab/lab.env")"
expect "capability xattr stored in the host's upper dir, not the shared rootfs" "upper:01000002 lower:none" python3 -c '
import os, sys
def cap(p):
    try:
        return os.getxattr(p, "security.capability")[:4].hex()
    except OSError:
        return "none"
print("upper:" + cap(sys.argv[1]), "lower:" + cap(sys.argv[2]))' "$state_root/$lab/hosts/h1/upper/usr/bin/ls" "$rootfs/usr/bin/ls"
expect "--bind-ro: controller file visible" "from the controller" on "$lab" h1 cat /mnt/lab-bind/file
check "--bind-ro: read-only" on "$lab" h1 '! touch /mnt/lab-bind/x 2>/dev/null'

# ---------------------------------------------------------- ansible ----
if ANSIBLE_HOST_KEY_CHECKING=0 ansible -i "$inv" lab -m ping -o >"$work/ansible" 2>&1 &&
	[ "$(grep -c 'SUCCESS' "$work/ansible")" -eq 2 ]; then
	pass "ansible -m ping on the lab group"
else
	fail "ansible -m ping: $(paste -sd'|' - <"$work/ansible")"
fi

# ---------------------------------------------------------- reboots ----
on "$lab" h2 'echo kept >/var/lab-marker; echo lost >/run/lab-marker'
t0="$(ms)"
check "reboot-host h2" "$L" reboot-host --name "$lab" h2
echo "reboot-host took $(($(ms) - t0)) ms"
# shellcheck disable=SC2016 # expanded in the host
expect "after reboot: disk kept, /run fresh, 2 boots" "kept|none|2" \
	on "$lab" h2 'printf "%s|%s|%s" "$(cat /var/lab-marker)" "$(cat /run/lab-marker 2>/dev/null || echo none)" "$(journalctl --list-boots | grep -cE "^ *-?[0-9]+ ")"'
t0="$(ms)"
on "$lab" h1 systemctl poweroff >/dev/null 2>&1 || true
echo "poweroff command returned after $(($(ms) - t0)) ms"
for _ in $(seq 100); do
	st="$("$L" status --name "$lab" 2>/dev/null)" || true # fails while a host is down
	grep -q '^h1 .* stopped' <<<"$st" && break
	sleep 0.2
done
echo "h1 stopped $(($(ms) - t0)) ms after poweroff"
check "status reports h1 stopped after poweroff" bash -c "'$L' status --name '$lab' | grep -q '^h1 .* stopped'"
check "status fails while a host is down" bash -c "! '$L' status --name '$lab' >/dev/null"
check "start-host h1" "$L" start-host --name "$lab" h1
expect "h1 back after start-host" running on "$lab" h1 systemctl is-system-running
check "start-host on a running host is a no-op" "$L" start-host --name "$lab" h1

# ------------------------------------------------- not touching others ----
subnet_a="$(sed -n 's/^SUBNET=//p' "$state_root/$lab/lab.env")"
check "up of an existing lab name fails" bash -c "! '$L' up --name '$lab' --hosts 1 2>/dev/null"
check "up on a subnet in use fails" bash -c "! '$L' up --name '$intr' --hosts 1 --subnet '$subnet_a' 2>/dev/null"
check_clean "failed up leaves nothing" "$intr"
expect "the other labs still run" "running degraded" bash -c \
	"{ '$L' ssh --name '$lab' h1 systemctl is-system-running; '$L' ssh --name '$other' h1 systemctl is-system-running; } | paste -sd' ' -"
expect "list shows both labs" "$lab $other" bash -c "'$L' list | awk 'NR > 1 && (\$1 == \"$lab\" || \$1 == \"$other\") { print \$1 }' | sort | paste -sd' ' -"

# -------------------------------------------------------------- down ----
snapshot "$lab"
snapshot "$other"
t0="$(ms)"
check "down $lab" "$L" down --name "$lab"
echo "down of 2 hosts took $(($(ms) - t0)) ms"
check "down $other forced (LAB_STOP_TIMEOUT=0: SIGKILL, then the cgroups)" env LAB_STOP_TIMEOUT=0 "$L" down --name "$other"
check_clean "nothing of $lab left (netns, links, mounts, cgroups, processes, state)" "$lab"
check_clean "nothing of $other left" "$other"
check "down again is a no-op" "$L" down --name "$lab"

# ------------------------------------------------- interrupted up ----
"$L" up --name "$intr" --hosts 2 >/dev/null 2>"$work/up-i.err" &
up_i=$!
for _ in $(seq 600); do
	[ -s "$state_root/$intr/hosts/h2/pid" ] && break
	sleep 0.05
done
snapshot "$intr"
kill -TERM "$up_i"
rc_i=0
wait "$up_i" || rc_i=$?
if [ "$rc_i" -ne 0 ] && grep -q 'tearing down' "$work/up-i.err"; then
	pass "SIGTERM to up during boot: it fails and tears down (rc $rc_i)"
else
	fail "interrupted up: rc $rc_i; $(tail -n 5 "$work/up-i.err" | paste -sd'|' -)"
fi
check_clean "nothing of the interrupted lab left" "$intr"

summary
