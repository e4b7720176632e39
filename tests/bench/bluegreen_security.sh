#!/usr/bin/env bash
# systemd-analyze security of the units bluegreen_unit writes with its
# default hardening, for the demo web app on a lab host (Debian 12's
# systemd), in the three shapes the demo and the roles deploy:
#
#   bench: security unit=NAME shape=S exposure=X.Y rating=R
#
# shape: socket-root (strategy socket, no user), socket-user (strategy
# socket, user webapp), reuseport-cap (strategy reuseport, user webapp,
# CAP_NET_BIND_SERVICE). "OK" is exposure 4.9 or less. Each shape is also
# flipped once and checked to serve (the hardening must not break the demo).
#
#   tests/bench/bluegreen_security.sh [--module BIN] [--lab NAME | --inventory PATH] [--keep]
#
# --module measures another build of the module (an older commit's, to
# compare). Without --inventory it boots its own 1-host lab and tears it
# down. Raw output goes to .build/bench/bluegreen_security/.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

lab="bgsec-$$"
inventory=""
keep=false
module_bin=""
while [ $# -gt 0 ]; do
	case "$1" in
	--module) module_bin="$2"; shift 2 ;;
	--lab) lab="$2"; shift 2 ;;
	--inventory) inventory="$2"; shift 2 ;;
	--keep) keep=true; shift ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done

work="$REPO_ROOT/.build/bench/bluegreen_security"
rm -rf "$work"
mkdir -p "$work/cm"
lab_sh="$REPO_ROOT/tests/lab/lab.sh"
if [ -z "$module_bin" ]; then
	module_bin="$REPO_ROOT/bin/bluegreen_unit_linux_$(go env GOARCH)"
	if [ ! -x "$module_bin" ]; then
		module_bin="$work/bluegreen_unit"
		CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$module_bin" ./modules/bluegreen_unit
	fi
fi
(cd demo/webapp && CGO_ENABLED=0 GOFLAGS=-mod=vendor go build -trimpath -ldflags '-s -w -X main.version=sec' -o "$work/webapp" .)

booted=false
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if $booted && ! $keep; then
		"$lab_sh" down --name "$lab" >"$work/lab-down.log" 2>&1 || echo "lab teardown failed: see $work/lab-down.log" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "$inventory" ]; then
	inventory="$("$lab_sh" up --name "$lab" --hosts 1 | tail -n1)"
	booted=true
fi
h1="$(sed -n 's/^h1 ansible_host=\([0-9.]*\).*/\1/p' "$inventory")"
key="$(sed -n 's/^ansible_ssh_private_key_file=//p' "$inventory")"
if [ -z "$h1" ] || [ -z "$key" ]; then
	echo "cannot read h1 and the key from $inventory" >&2
	exit 1
fi
ssh_opts=(-i "$key" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o BatchMode=yes -o ControlMaster=auto -o ControlPersist=60s -o "ControlPath=$work/cm/%h")
# shellcheck disable=SC2029 # commands are built here to run there
on() { ssh "${ssh_opts[@]}" "root@$h1" "$@"; }

on 'mkdir -p /opt/secdemo/blue /opt/secdemo/green /root/sec; id webapp >/dev/null 2>&1 || useradd --system --no-create-home webapp'
scp -q "${ssh_opts[@]}" "$module_bin" "root@$h1:/root/sec/bluegreen_unit"
scp -q "${ssh_opts[@]}" "$work/webapp" "root@$h1:/opt/secdemo/blue/webapp"
on 'cp /opt/secdemo/blue/webapp /opt/secdemo/green/webapp'

# args SHAPE EXTRA-JSON: the module's arguments for one shape.
args() {
	local strategy=socket listen='"--fd-name", "http"' sockets='"sockets": [{"name": "http", "listen": ["0.0.0.0:80"]}],' user="" hardening=""
	case "$1" in
	socket-user) user='"user": "webapp",' ;;
	reuseport-cap)
		strategy=reuseport listen='"--reuseport", "--listen", ":80"' sockets="" user='"user": "webapp",'
		hardening='"hardening": {"capabilities": ["CAP_NET_BIND_SERVICE"]},'
		;;
	esac
	module_defaults bluegreen_unit <<JSON
{"name": "secdemo", "strategy": "$strategy", "service_type": "notify", $sockets $user $hardening
 "reuseport_migrate": false,
 "command": ["/opt/{name}/{colour}/webapp", "--colour", "{colour}", $listen, "--health-listen", "127.0.0.1:{health_port}"],
 "colour_vars": {"blue": {"health_port": 9001}, "green": {"health_port": 9002}},
 "health": {"url": "http://127.0.0.1:{health_port}/healthz", "interval": 0.1, "timeout": 20, "successes": 2}, $2}
JSON
}

module() { # SHAPE EXTRA-JSON: run the module on h1, fail loudly
	args "$1" "$2" | on 'cat >/root/sec/args.json && /root/sec/bluegreen_unit /root/sec/args.json' >"$work/module.out" || true
	if [ ! -s "$work/module.out" ] || grep -q '"failed": *true' "$work/module.out"; then
		echo "module run failed ($1, $2): $(cat "$work/module.out")" >&2
		return 1
	fi
}

status=0
for shape in socket-root socket-user reuseport-cap; do
	module "$shape" '"state": "absent"'
	module "$shape" '"active": "blue"' || { status=1; continue; }
	on 'systemd-analyze security --no-pager secdemo-blue.service' >"$work/$shape.txt" 2>&1 || true
	# Flip once and check that the new colour serves.
	if ! module "$shape" '"action": "flip"' || ! on 'curl -fsS http://127.0.0.1/ | grep -q "colour=green"'; then
		echo "shape $shape: the hardened service does not flip or serve: $(cat "$work/module.out")" >&2
		status=1
	fi
	/usr/bin/python3 - "$shape" "$work/$shape.txt" <<'PY' || status=1
import re, sys
shape, path = sys.argv[1:]
text = open(path).read()
m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", text)
if not m:
    sys.exit("no exposure level in %s:\n%s" % (path, text[-2000:]))
print("bench: security unit=secdemo-blue.service shape=%s exposure=%s rating=%s" % (shape, m.group(1), m.group(2)))
PY
	module "$shape" '"state": "absent"'
done
exit $status
