#!/usr/bin/env bash
# The README's promise, tried: boots a copy of the lab's Debian 12 rootfs as
# a clean systemd host (systemd-nspawn, a network namespace of its own),
# clones this checkout's HEAD into it, and runs COMMAND there as root, as a
# unit of its systemd (default: make test). Its one way out is an HTTP proxy
# (tests/fresh/relay.py) to Debian's mirror and the Go module proxy, nothing
# else; the labs it boots stay inside it. Prints the command's output and its
# duration; the output is also kept in WORK/run.log.
#
#   tests/fresh/run.sh [--keep] [COMMAND...]
#
# Needs root, a lab rootfs built (any tests/lab/lab.sh up builds it), python3.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

keep=false
[ "${1:-}" != --keep ] || { keep=true; shift; }
[ $# -gt 0 ] || set -- make test
die() { printf 'fresh: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

rootfs="${FRESH_ROOTFS:-$(find /var/cache/chezlepro-lab -maxdepth 1 -name 'rootfs-*' -type d -printf '%T@ %p\n' 2>/dev/null | sort -rn | head -n1 | cut -d' ' -f2-)}"
[ -f "$rootfs/.chezlepro-lab-stamp" ] || die "no lab rootfs under /var/cache/chezlepro-lab (tests/lab/lab.sh up builds one) or FRESH_ROOTFS"
name="fresh$$"
work="$(mktemp -d /var/tmp/chezlepro-fresh.XXXXXX)"
cg_dirs=()
for cg in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
	[ -d "$cg" ] && cg_dirs+=("$cg/nspawn-$name")
done
proxy_pid=""
nspawn_pid=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$? i
	trap - EXIT
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid" 2>/dev/null || true
		for i in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; [ "$i" -ne 100 ] || kill -KILL "$nspawn_pid" 2>/dev/null || true; done
	fi
	[ -z "$proxy_pid" ] || kill -- "-$proxy_pid" 2>/dev/null || true
	for cg in "${cg_dirs[@]}"; do [ ! -d "$cg" ] || find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
	if $keep || [ -n "$(findmnt -rn -o TARGET | grep -F "$work" || true)" ]; then
		echo "fresh: kept $work"
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
# A copy: the lab's rootfs is shared and read-only.
cp -a "$rootfs" "$work/root"
git bundle create -q "$work/root/root/repo.bundle" HEAD
mkdir -p "$work/sock"
setsid python3 tests/fresh/relay.py proxy "$work/sock/proxy.sock" >"$work/proxy.log" 2>&1 &
proxy_pid=$!
cat >"$work/root/etc/systemd/system/fresh-relay.service" <<'UNIT'
[Unit]
Description=HTTP proxy on 127.0.0.1:3128 to the host's relay (the mirror and the Go proxy only)
[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/fresh-relay.py listen /run/host-proxy/proxy.sock
[Install]
WantedBy=multi-user.target
UNIT
cp tests/fresh/relay.py "$work/root/usr/local/lib/fresh-relay.py"
ln -sf /etc/systemd/system/fresh-relay.service "$work/root/etc/systemd/system/multi-user.target.wants/fresh-relay.service"
# The CAs this machine was given on top of Debian's (an egress proxy's), as
# a fresh machine on this network would be given them.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$work/root/usr/local/share/ca-certificates/"
	chroot "$work/root" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in the copy"
fi
printf 'Acquire::http::Proxy "http://127.0.0.1:3128";\nAcquire::https::Proxy "http://127.0.0.1:3128";\n' >"$work/root/etc/apt/apt.conf.d/90fresh-proxy"
echo "fresh: $rootfs copied to $work/root in $(($(date +%s) - t0)) s"

# The launcher joins cgroups of its own (nspawn shares one otherwise), then
# nspawn runs in a private mount namespace with its own /run/systemd/nspawn.
# shellcheck disable=SC2016 # expanded by that bash
setsid bash -c '
	for cg in "${@:2}"; do mkdir -p "$cg"; echo $$ >"$cg/cgroup.procs"; done
	exec env SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 unshare --mount --propagation private -- bash -c "
		mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=0755,size=4m fresh /run/systemd/nspawn &&
		exec systemd-nspawn -b -D \"$0/root\" -M \"$1\" --console=read-only --register=no --keep-unit \
			--resolv-conf=off --timezone=off --link-journal=no --private-network --capability=all \
			--system-call-filter=pidfd_getfd --bind=\"$0/sock:/run/host-proxy\" --bind=/dev/net/tun --bind=/dev/kvm
	" "$0" "$1"
' "$work" "$name" "${cg_dirs[@]}" >"$work/console.log" 2>&1 &
nspawn_pid=$!
leader=""
for _ in $(seq 300); do
	leader="$(awk '{ print $1 }' "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null || true)"
	if [ -n "$leader" ] && [ "$(cat "/proc/$leader/comm" 2>/dev/null)" = systemd ]; then break; fi
	leader=""
	sleep 0.1
done
[ -n "$leader" ] || { tail -n 20 "$work/console.log" >&2; die "the container did not boot"; }
inside() { nsenter -t "$leader" -a "$@"; }
for _ in $(seq 300); do inside test -S /run/dbus/system_bus_socket && break; sleep 0.1; done
inside systemctl is-system-running --wait >/dev/null 2>&1 || true
echo "fresh: $name booted ($(inside systemctl is-system-running 2>&1 || true)) in $(($(date +%s) - t0)) s"

t1=$(date +%s)
rc=0
inside systemd-run --wait --pipe --quiet --unit=fresh-run --service-type=exec -p KillMode=control-group \
	--setenv=http_proxy=http://127.0.0.1:3128 --setenv=https_proxy=http://127.0.0.1:3128 \
	--setenv=no_proxy=127.0.0.1,localhost,::1 \
	--setenv=HOME=/root --setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	bash -c 'cd /root && git -c advice.detachedHead=false clone -q repo.bundle sovereign && cd sovereign && exec "$@"' run "$@" 2>&1 |
	tee "$work/run.log" || rc=$?
echo "fresh: '$*' exited $rc in $(($(date +%s) - t1)) s (whole run $(($(date +%s) - t0)) s); proxy refusals: $(grep -c refused "$work/proxy.log" || true)"
exit "$rc"
