#!/usr/bin/env bash
# Benchmark of chezlepro.sovereign.bluegreen_unit: the demo web app on lab
# host h1 is flipped again and again while tests/loadgen, on lab host h2,
# loads it over the lab network with three clients at once, each a loadgen
# with -rate 0 (a new connection per request; kept-alive connections, which
# Go's net/http, like browsers, retries a GET on once when the server closed
# the idle connection; and the same kept-alive client that never retries,
# -noretry). Strategies socket, reuseport and exclusive,
# and the baseline a user would otherwise use - `systemctl restart` of one
# unit - are measured in the same run, each with the same number of flips:
#
#   bench: flip strategy=S flips=N requests=R failed=F flip_ms_p50=P flip_ms_max=M noretry_failed=X
#
# requests and failed count the first two clients together; noretry_failed
# is what the client that never retries lost, counted apart (out of
# noretry_requests on the detail line). A "bench: detail" line per strategy
# gives the request rate, the failures per client and class (loadgen's error
# kinds, words joined by -), and the keep-alive retries. reuseport is
# measured with net.ipv4.tcp_migrate_req=1 (what the module sets) and, to
# show why it matters, again with 0 (strategy=reuseport-nomigrate).
#
#   tests/bench/bluegreen_unit.sh [--flips N] [--lab NAME | --inventory PATH] [--keep]
#
# Without --inventory it boots its own 2-host lab and tears it down. Every
# loop is bounded; all traffic stays inside the lab. Raw results go to
# .build/bench/bluegreen_unit/.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

flips=20
lab="bgbench-$$"
inventory=""
keep=false
while [ $# -gt 0 ]; do
	case "$1" in
	--flips) flips="$2"; shift 2 ;;
	--lab) lab="$2"; shift 2 ;;
	--inventory) inventory="$2"; shift 2 ;;
	--keep) keep=true; shift ;;
	-h | --help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ $flips =~ ^[1-9][0-9]{0,3}$ ]] || { echo "--flips must be 1-9999" >&2; exit 2; }

work="$REPO_ROOT/.build/bench/bluegreen_unit"
rm -rf "$work"
mkdir -p "$work"
lab_sh="$REPO_ROOT/tests/lab/lab.sh"

# ------------------------------------------------------------------ build
goarch="$(go env GOARCH)"
module_bin="$REPO_ROOT/bin/bluegreen_unit_linux_$goarch"
if [ ! -x "$module_bin" ]; then
	module_bin="$work/bluegreen_unit"
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$module_bin" ./modules/bluegreen_unit
fi
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/loadgen" ./tests/loadgen
(cd demo/webapp && CGO_ENABLED=0 GOFLAGS=-mod=vendor go build -trimpath -ldflags '-s -w -X main.version=bench' -o "$work/webapp" .)

# -------------------------------------------------------------------- lab
booted=false
extra=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if $booted && ! $keep; then
		"$lab_sh" down --name "$lab" >"$work/lab-down.log" 2>&1 || echo "lab teardown failed: see $work/lab-down.log" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -z "$inventory" ]; then
	inventory="$("$lab_sh" up --name "$lab" --hosts 2 | tail -n1)"
	booted=true
fi
addr_of() { sed -n "s/^$1 ansible_host=\([0-9.]*\).*/\1/p" "$inventory"; }
h1="$(addr_of h1)"
h2="$(addr_of h2)"
key="$(sed -n 's/^ansible_ssh_private_key_file=//p' "$inventory")"
if [ -z "$h1" ] || [ -z "$h2" ] || [ -z "$key" ]; then
	echo "cannot read h1, h2 and the key from $inventory" >&2
	exit 1
fi
mkdir -p "$work/cm"
ssh_opts=(-i "$key" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o BatchMode=yes -o ControlMaster=auto -o ControlPersist=120s -o "ControlPath=$work/cm/%h")
# shellcheck disable=SC2029 # commands are built here to run there
on() { local h="$1"; shift; ssh "${ssh_opts[@]}" "root@$h" "$@"; }
put() { local h="$1"; shift; local dest="${*: -1}"; scp -q "${ssh_opts[@]}" "${@:1:$#-1}" "root@$h:$dest"; }

# The lab hosts' /proc/sys is read-only: tcp_migrate_req is set from outside,
# in h1's network namespace (found by its address).
h1_netns=""
for ns in $(ip netns list | awk '{print $1}'); do
	if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet $h1/"; then h1_netns="$ns"; fi
done
[ -n "$h1_netns" ] || { echo "cannot find the network namespace of h1 ($h1)" >&2; exit 1; }
set_migrate() { ip netns exec "$h1_netns" sysctl -q -w "net.ipv4.tcp_migrate_req=$1"; }

on "$h1" 'mkdir -p /opt/bench/blue /opt/bench/green /root/bench'
on "$h2" 'mkdir -p /root/bench'
put "$h1" "$module_bin" /root/bench/bluegreen_unit.new
module_defaults bluegreen_unit <<<'{"name": "bench", "state": "absent"}' >"$work/absent.json"
put "$h1" "$work/absent.json" /root/bench/absent.json
put "$h1" "$work/webapp" /opt/bench/webapp.new
put "$h2" "$work/loadgen" /root/bench/loadgen.new
# Whatever an interrupted run left: the service, the baseline unit.
on "$h1" 'set -e
	mv -f /root/bench/bluegreen_unit.new /root/bench/bluegreen_unit
	/root/bench/bluegreen_unit /root/bench/absent.json >/dev/null
	if [ -e /etc/systemd/system/benchrestart.service ]; then
		systemctl stop benchrestart.service; rm -f /etc/systemd/system/benchrestart.service; systemctl daemon-reload
	fi
	systemctl reset-failed benchrestart.service 2>/dev/null || true
	cp /opt/bench/webapp.new /opt/bench/green/webapp.new
	mv -f /opt/bench/webapp.new /opt/bench/blue/webapp
	mv -f /opt/bench/green/webapp.new /opt/bench/green/webapp'
on "$h2" 'mv -f /root/bench/loadgen.new /root/bench/loadgen'

# Module arguments of one strategy ($1) with extra JSON members ($2).
module_args() {
	local listen='"--listen", ":8080"' sockets=""
	case "$1" in
	socket) listen='"--fd-name", "http"'; sockets='"sockets": [{"name": "http", "listen": ["0.0.0.0:8080"], "backlog": 4096}],' ;;
	reuseport) listen='"--reuseport", "--listen", ":8080"' ;;
	esac
	module_defaults bluegreen_unit <<EOF
{"name": "bench", "strategy": "$1", "service_type": "notify", $sockets
 "command": ["/opt/{name}/{colour}/webapp", "--colour", "{colour}", $listen, "--health-listen", "127.0.0.1:{health_port}"],
 "colour_vars": {"blue": {"health_port": 9001}, "green": {"health_port": 9002}},
 "health": {"url": "http://127.0.0.1:{health_port}/healthz", "interval": 0.1, "timeout": 20, "successes": 3},
 "service_options": {"LimitNOFILE": 65536}, $2}
EOF
}

restart_unit='[Unit]
Description=bench baseline: one unit, systemctl restart
StartLimitIntervalSec=0
[Service]
Type=notify
ExecStart=/opt/bench/blue/webapp --colour blue --listen :8080
LimitNOFILE=65536
'

# The flip loop, on h1: N times the command, each timed; one line per flip.
cat >"$work/flips.sh" <<'EOF'
#!/bin/sh
# flips.sh N CMD...: runs CMD N times, one line per run: "i start_ms end_ms rc".
n="$1"; shift
i=1
while [ "$i" -le "$n" ]; do
	s=$(date +%s%3N)
	if "$@" >"/root/bench/flip-$i.out" 2>&1; then rc=0; else rc=$?; fi
	e=$(date +%s%3N)
	echo "$i $s $e $rc"
	i=$((i + 1))
	sleep 0.3
done
EOF
put "$h1" "$work/flips.sh" /root/bench/flips.sh
on "$h1" 'chmod +x /root/bench/flips.sh'

run_module() { # strategy extra-json
	module_args "$1" "$2$extra" >"$work/args.json"
	put "$h1" "$work/args.json" /root/bench/args.json
	on "$h1" '/root/bench/bluegreen_unit /root/bench/args.json' >"$work/module.out" || true
	if grep -q '"failed": *true' "$work/module.out"; then
		echo "module run failed for $1: $(cat "$work/module.out")" >&2
		return 1
	fi
}

scenario() { # name strategy [extra JSON members for every module run]
	local name="$1" strategy="$2" flip_cmd
	extra="${3:+, $3}"
	case "$strategy" in
	restart)
		on "$h1" "cat >/etc/systemd/system/benchrestart.service && systemctl daemon-reload && systemctl start benchrestart.service" <<<"$restart_unit"
		flip_cmd="systemctl restart benchrestart.service"
		;;
	*)
		run_module "$strategy" '"active": "blue"'
		module_args "$strategy" '"action": "flip"'"$extra" >"$work/flip.json"
		put "$h1" "$work/flip.json" /root/bench/flip.json
		flip_cmd="/root/bench/bluegreen_unit /root/bench/flip.json"
		;;
	esac
	# Warm up, then load while flipping.
	# The three clients: a loadgen each, its pid (nohup execs it) in load-C.pid.
	on "$h2" "cd /root/bench && rm -f load-*.pid load-*.json && for c in 'newconn -concurrency 4' 'keepalive -concurrency 4 -keepalive' 'noretry -concurrency 2 -keepalive -noretry'; do
		set -- \$c; name=\$1; shift
		nohup ./loadgen -target http://$h1:8080/ -rate 0 -out load-\$name.json \"\$@\" >/dev/null 2>load-\$name.err </dev/null &
		echo \$! >load-\$name.pid
	done"
	local i
	sleep 1
	# shellcheck disable=SC2086 # flip_cmd is words on purpose
	on "$h1" "/root/bench/flips.sh $flips $flip_cmd" >"$work/$name-flips.txt"
	sleep 1
	# shellcheck disable=SC2016 # expanded on h2: the pids of the loadgens we started
	on "$h2" 'cd /root/bench && kill -TERM $(cat load-newconn.pid load-keepalive.pid load-noretry.pid)'
	for ((i = 0; i < 100; i++)); do on "$h2" 'cd /root/bench && test -s load-newconn.json && test -s load-keepalive.json && test -s load-noretry.json' && break; sleep 0.1; done
	local c
	for c in newconn keepalive noretry; do on "$h2" "cat /root/bench/load-$c.json" >"$work/$name-load-$c.json"; done
	on "$h1" 'cat /root/bench/flip-*.out' >"$work/$name-flip-outputs.txt" 2>/dev/null || true
	/usr/bin/python3 - "$name" "$work/$name-flips.txt" "$work/$name-load" <<'EOF'
import json, statistics, sys
name, flips_path, load_prefix = sys.argv[1:]
flips = [l.split() for l in open(flips_path) if l.strip()]
ms = [int(e) - int(s) for _, s, e, _ in flips]
bad = sum(1 for f in flips if f[3] != "0")
# One loadgen report per client.
new, keep, noretry = (json.load(open("%s-%s.json" % (load_prefix, c))) for c in ("newconn", "keepalive", "noretry"))


def classes(*reports):
    # loadgen's error kinds as one word each ("connection refused" -> connection-refused).
    out = {}
    for r in reports:
        for kind, n in r["targets"][0]["errors"].items():
            key = kind.split(":")[0].replace(" ", "-")
            out[key] = out.get(key, 0) + n
    return ",".join("%s:%d" % kv for kv in sorted(out.items())) or "none"


requests, failed = new["sent"] + keep["sent"], new["failed"] + keep["failed"]
print("bench: flip strategy=%s flips=%d requests=%d failed=%d flip_ms_p50=%d flip_ms_max=%d noretry_failed=%d"
      % (name, len(flips), requests, failed, statistics.median(ms), max(ms), noretry["failed"]))
print("bench: detail strategy=%s rps=%d newconn_requests=%d newconn_failed=%d keepalive_requests=%d keepalive_failed=%d"
      " keepalive_retries=%d keepalive_retries_ok=%d failure_classes=%s flips_failed=%d"
      " noretry_requests=%d noretry_failed=%d noretry_failure_classes=%s"
      % (name, requests * 1000 / max(new["duration_ms"], keep["duration_ms"]), new["sent"], new["failed"], keep["sent"],
         keep["failed"], keep["retried"], keep["retried_ok"], classes(new, keep), bad,
         noretry["sent"], noretry["failed"], classes(noretry)))
EOF
	if awk '$4 != 0 {bad = 1} END {exit !bad}' "$work/$name-flips.txt"; then
		echo "strategy $name: some flips failed: see $work/$name-flip-outputs.txt" >&2
		status=1
	fi
	case "$strategy" in
	restart) on "$h1" 'systemctl stop benchrestart.service; rm -f /etc/systemd/system/benchrestart.service; systemctl daemon-reload' ;;
	*) run_module "$strategy" '"state": "absent"' ;;
	esac
}

status=0
set_migrate 0
scenario restart restart
scenario socket socket
set_migrate 1
scenario reuseport reuseport
scenario exclusive exclusive
set_migrate 0
# Without the setting (the module refuses that unless told).
scenario reuseport-nomigrate reuseport '"reuseport_migrate": false'
exit $status
