#!/usr/bin/env bash
# Benchmark of playbooks/deploy.yml over 1, 4, 8 and 16 lab hosts at once
# (serial and forks = the number of hosts), against the baseline a user would
# otherwise use: copy the binary, restart the service, wait for its health
# check (tests/bench/scale/copy_restart.yml), on the same hosts.
#
#   mode=first:  the hosts' module caches emptied before the deploy (every
#                module binary uploaded once per host);
#   mode=cached: the deploy after it, caches warm.
# Every measured run ships a release no host has yet (the demo service,
# demo/webapp, built here with a new version string), so each deploy
# stages and flips on every host; a deploy to all hosts before the
# measurements puts the service in place (users, units, sockets) so that
# each run is an update, like the baseline's.
#
# deploy_s: the ansible-playbook's wall time; bytes_to_targets: what the
# controller's side of the hosts' veths sent during the run (ssh included;
# ssh masters stay up between runs, as in a play), the artifact included
# (artifact_bytes, once per host). Pipelining on for both (the baseline's
# best). machine_cpu_s: what the whole machine spent busy during the run
# (the controller and all the lab hosts share its cores); floor_s, that
# over the cores: the shortest the run could take here, perfectly spread.
# Closes with the hosts=16 / hosts=1 ratios; the target is a 16-host deploy
# within 3 x the 1-host one. The ratio line's floor_s is the 16-host floor
# over the 1-host wall time: above 3, this machine cannot meet the target
# with that much work, whatever the parallelism.
#
# Settings: BENCH_SCALE_HOSTS ("1 4 8 16"), BENCH_SCALE_REPEATS (1: medians when
# more), BENCH_SCALE_MODES ("first cached"; "plain" adds the deploy with
# the module cache off). Each host costs root about INOTIFY_PER_HOST
# inotify instances (fs.inotify.max_user_instances): when the limit leaves
# room for fewer hosts, the bench says so and measures the counts that fit
# (BENCH_SCALE_WAIT_S, default 0: seconds to wait for other labs to leave
# room first).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
setup_for lab

read -r -a counts <<<"${BENCH_SCALE_HOSTS:-1 4 8 16}"
read -r -a modes <<<"${BENCH_SCALE_MODES:-first cached}"
repeats="${BENCH_SCALE_REPEATS:-1}"
wait_s="${BENCH_SCALE_WAIT_S:-0}"
# Counted on lab hosts after an ssh login: systemd (PID 1) 5, root's user
# manager 3, logind 1 (dbus runs as another user); one more as margin.
INOTIFY_PER_HOST=10

say() { echo "bench scale: $*" >&2; }
die() {
	say "$*"
	exit 1
}
for n in "${counts[@]}"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE_HOSTS: '$n' is not a host count"
done
for m in "${modes[@]}"; do
	case "$m" in first | cached | plain) ;; *) die "BENCH_SCALE_MODES: '$m' is not one of first, cached, plain" ;; esac
done
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SCALE_REPEATS: '$repeats' is not a positive number"
[[ "$wait_s" =~ ^[0-9]+$ ]] || die "BENCH_SCALE_WAIT_S: '$wait_s' is not a number of seconds"
for m in source_build binary_stage bluegreen_unit; do
	[ -x "bin/${m}_linux_amd64" ] || die "bin/${m}_linux_amd64 is missing: run make build (make bench does)"
done

# root_inotify_instances: inotify instances held by root's processes now
# (the kernel counts them per user against max_user_instances).
root_inotify_instances() {
	local fd pid used=0
	while read -r fd; do
		pid="${fd#/proc/}"
		pid="${pid%%/*}"
		[ "$(stat -c %u "/proc/$pid" 2>/dev/null)" = 0 ] && used=$((used + 1))
	done < <(find /proc/[0-9]*/fd -lname 'anon_inode:inotify' 2>/dev/null)
	echo "$used"
}

# Keep the counts the inotify limit leaves room for, after waiting up to
# BENCH_SCALE_WAIT_S for other labs to leave room for the largest.
limit="$(cat /proc/sys/fs/inotify/max_user_instances)"
largest=0
for n in "${counts[@]}"; do [ "$n" -le "$largest" ] || largest="$n"; done
deadline=$(($(date +%s) + wait_s))
while :; do
	used="$(root_inotify_instances)"
	room=$(((limit - used) / INOTIFY_PER_HOST))
	if [ "$room" -ge "$largest" ] || [ "$(date +%s)" -ge "$deadline" ]; then break; fi
	say "room for $room lab hosts ($used of fs.inotify.max_user_instances=$limit in use by root), $largest wanted: waiting"
	sleep 10
done
fitting=()
for n in "${counts[@]}"; do
	if [ "$n" -le "$room" ]; then
		fitting+=("$n")
	else
		echo "bench: scale hosts=$n skipped: fs.inotify.max_user_instances=$limit with $used in use by root leaves room for $room lab hosts (about $INOTIFY_PER_HOST each); sysctl -w fs.inotify.max_user_instances=$((used + n * INOTIFY_PER_HOST + 64)) lets it run"
	fi
done
[ "${#fitting[@]}" -gt 0 ] || die "no host count of '${counts[*]}' fits: see the lines above"
counts=("${fitting[@]}")
max_hosts=0
for n in "${counts[@]}"; do [ "$n" -le "$max_hosts" ] || max_hosts="$n"; done

lab="bench-scale-$$"
work="$(mktemp -d /var/tmp/bench-scale.XXXXXX)"
logs="$REPO_ROOT/.build/bench/scale"
rm -rf "$logs"
mkdir -p "$logs"
trap 'lab_down "$lab" "$logs"; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

say "booting $max_hosts lab hosts ($lab)"
inventory="$(tests/lab/lab.sh up --name "$lab" --hosts "$max_hosts" 2>"$logs/lab-up.log" | tail -n1)" || {
	tail -n 20 "$logs/lab-up.log" >&2
	die "the lab of $max_hosts hosts did not boot (log: $logs/lab-up.log)"
}
subnet="$(sed -n 's/^SUBNET=//p' "$(dirname "$inventory")/lab.env")"

ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_PIPELINING=1

# The hosts' roles: all of them app hosts with the lab's demo service
# settings (inventories/lab/group_vars/app.yml); no edge host.
mkdir -p "$work/inventory/group_vars"
cp inventories/lab/group_vars/app.yml "$work/inventory/group_vars/app.yml"
{
	echo "app:"
	echo "  hosts:"
	for ((i = 1; i <= max_hosts; i++)); do echo "    h$i:"; done
	echo "edge:"
	echo "  hosts: {}"
} >"$work/inventory/hosts.yml"

# hosts_pattern N: "h1:h2:...:hN".
hosts_pattern() {
	local i p="h1"
	for ((i = 2; i <= $1; i++)); do p="$p:h$i"; done
	echo "$p"
}

# tx N: bytes the controller sent so far to each of h1..hN, one a line
# (the host side of each veth transmits what its host receives).
tx() {
	local i
	for ((i = 1; i <= $1; i++)); do
		host_rx_bytes "$subnet" "$i" || die "$lab's h$i cannot be counted"
	done
}

# build_release V: demo/webapp with version V, and the manifest deploy.yml
# reads, into WORK/artifacts/webapp/V/ (offline, from its vendor/).
build_release() {
	local dir="$work/artifacts/webapp/$1" sum size
	mkdir -p "$dir"
	(cd demo/webapp && CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPROXY=off go build -trimpath -ldflags "-X main.version=$1" -o "$dir/webapp" .)
	sum="$(sha256sum "$dir/webapp" | cut -d' ' -f1)"
	size="$(stat -c %s "$dir/webapp")"
	printf '{"name": "webapp", "version": "%s", "commit": "bench", "sha256": "%s", "size": %s, "artifact": "webapp"}\n' \
		"$1" "$sum" "$size" >"$dir/manifest.json"
}

release=0
# What deploy.yml's plan must say on every host: the first run installs.
reason="first deploy"
# run PLAY N MODE: one measured run on h1..hN of a release built for it;
# sets run_ms and run_bytes.
run() {
	local play="$1" n="$2" mode="$3" version t0 c0 rc=0 flips log extra=()
	release=$((release + 1))
	version="bench-$release"
	build_release "$version"
	log="$logs/$play-h$n-$mode-$release.log"
	# Through ansible, not lab.sh ssh: an ssh master that lab.sh opens is
	# reused by the next ansible-playbook, without ansible's compression (-C).
	if [ "$mode" = first ]; then
		ansible -i "$inventory" "$(hosts_pattern "$n")" -f "$n" -m ansible.builtin.file \
			-a "path=/root/.ansible/chezlepro_sovereign state=absent" >"${log%.log}.clear.log" 2>&1 ||
			die "could not empty the module caches of h1..h$n (log: ${log%.log}.clear.log)"
	fi
	# Ansible's own log, timestamped: where the time went.
	export ANSIBLE_LOG_PATH="${log%.log}.timed.log"
	tx "$n" >"$work/tx0"
	c0=$(children_cpu_ticks)
	m0=$(machine_cpu_ticks)
	t0=$(date +%s%N)
	if [ "$play" = deploy ]; then
		[ "$mode" != plain ] || extra=(-e chezlepro_sovereign_module_cache=false)
		ansible-playbook -i "$inventory" -i "$work/inventory" -f "$n" playbooks/deploy.yml "${extra[@]}" \
			-e "sovereign_app_hosts=$(hosts_pattern "$n")" -e "sovereign_deploy_serial=$n" \
			-e "sovereign_artifacts_dir=$work/artifacts" -e "webapp_version=$version" >"$log" 2>&1 || rc=$?
	else
		ansible-playbook -i "$inventory" -f "$n" tests/bench/scale/copy_restart.yml \
			-e "scale_hosts=$(hosts_pattern "$n")" -e "scale_artifact=$work/artifacts/webapp/$version/webapp" \
			-e "scale_version=$version" >"$log" 2>&1 || rc=$?
	fi
	run_ms=$((($(date +%s%N) - t0) / 1000000))
	run_cpu_ms=$((($(children_cpu_ticks) - c0) * 1000 / clk_tck))
	run_machine_cpu_ms=$((($(machine_cpu_ticks) - m0) * 1000 / clk_tck))
	tx "$n" >"$work/tx1"
	# Per host in the log, the sum for the bench line.
	paste "$work/tx0" "$work/tx1" | awk '{d = $2 - $1; printf "bytes to h%d: %d\n", NR, d; sum += d} END {printf "bytes to targets: %d\n", sum}' >>"$log"
	run_bytes="$(sed -n 's/^bytes to targets: //p' "$log")"
	[ "$rc" -eq 0 ] || {
		tail -n 30 "$log" >&2
		die "$play on $n hosts ($mode) failed (exit $rc, log: $log)"
	}
	# Each host must have staged and flipped, or the run measured less.
	if [ "$play" = deploy ]; then
		flips="$(grep -c "webapp $version (sha256 [0-9a-f]*): $reason;" "$log" || true)"
		[ "$flips" -eq "$n" ] || die "deploy on $n hosts ($mode) flipped $flips hosts, not $n (log: $log)"
	fi
}

# children_cpu_ticks: CPU time (user + system, clock ticks) of the children
# this shell waited for: ansible-playbook with its workers and ssh clients
# (not the ssh masters, which run detached).
children_cpu_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
# Clock ticks per second, for both counts of ticks.
clk_tck="$(getconf CLK_TCK)"

# machine_cpu_ticks: CPU time the whole machine spent busy (user, nice,
# system, irq, softirq, steal; clock ticks): the controller and every lab
# host share these cores, so machine CPU / cores is the shortest a run can
# take here, however well it spreads over the hosts.
machine_cpu_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# The service in place on every host, for both ways (not measured).
say "first deploy to $max_hosts hosts (not measured)"
run deploy "$max_hosts" cached
run copy_restart "$max_hosts" -
reason="new release"

scenarios=()
for m in "${modes[@]}"; do scenarios+=("deploy $m"); done
scenarios+=("copy_restart -")
for ((r = 1; r <= repeats; r++)); do
	for n in "${counts[@]}"; do
		for s in "${scenarios[@]}"; do
			read -r play mode <<<"$s"
			say "run $r/$repeats: $play hosts=$n mode=$mode"
			run "$play" "$n" "$mode"
			echo "$run_ms" >>"$work/$play-$mode-$n.ms"
			echo "$run_bytes" >>"$work/$play-$mode-$n.bytes"
			echo "$run_cpu_ms" >>"$work/$play-$mode-$n.cpu"
			echo "$run_machine_cpu_ms" >>"$work/$play-$mode-$n.mcpu"
		done
	done
done

artifact_bytes="$(stat -c %s "$work/artifacts/webapp/bench-1/webapp")"
cores="$(nproc)"
seconds() { awk -v m="$1" 'BEGIN {printf "%.1f", m / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
# all_s FILE: every run's seconds, in order, comma-separated (the spread behind a median).
all_s() { awk '{printf "%s%.1f", (NR > 1 ? "," : ""), $1 / 1000}' "$1"; }
for n in "${counts[@]}"; do
	base_ms="$(median <"$work/copy_restart---$n.ms")"
	base_bytes="$(median <"$work/copy_restart---$n.bytes")"
	base_cpu="$(median <"$work/copy_restart---$n.cpu")"
	base_mcpu="$(median <"$work/copy_restart---$n.mcpu")"
	for m in "${modes[@]}"; do
		ms="$(median <"$work/deploy-$m-$n.ms")"
		bytes="$(median <"$work/deploy-$m-$n.bytes")"
		cpu="$(median <"$work/deploy-$m-$n.cpu")"
		mcpu="$(median <"$work/deploy-$m-$n.mcpu")"
		echo "bench: scale hosts=$n play=deploy.yml mode=$m deploy_s=$(seconds "$ms") bytes_to_targets=$bytes vs_copy_restart_s=$(ratio "$ms" "$base_ms") vs_copy_restart_bytes=$(ratio "$bytes" "$base_bytes") ansible_cpu_s=$(seconds "$cpu") machine_cpu_s=$(seconds "$mcpu") floor_s=$(seconds $((mcpu / cores))) serial=$n forks=$n artifact_bytes=$artifact_bytes cores=$cores runs=$repeats runs_s=$(all_s "$work/deploy-$m-$n.ms")"
	done
	echo "bench: scale hosts=$n play=copy_restart deploy_s=$(seconds "$base_ms") bytes_to_targets=$base_bytes ansible_cpu_s=$(seconds "$base_cpu") machine_cpu_s=$(seconds "$base_mcpu") floor_s=$(seconds $((base_mcpu / cores))) forks=$n artifact_bytes=$artifact_bytes cores=$cores runs=$repeats runs_s=$(all_s "$work/copy_restart---$n.ms")"
done

# The target: hosts=16 within 3 x hosts=1 (the largest count measured against the smallest).
small="${counts[0]}" large="${counts[-1]}"
if [ "$large" != "$small" ]; then
	for s in "${scenarios[@]}"; do
		read -r play mode <<<"$s"
		a_ms="$(median <"$work/$play-$mode-$large.ms")" b_ms="$(median <"$work/$play-$mode-$small.ms")"
		a_b="$(median <"$work/$play-$mode-$large.bytes")" b_b="$(median <"$work/$play-$mode-$small.bytes")"
		a_c="$(median <"$work/$play-$mode-$large.cpu")" b_c="$(median <"$work/$play-$mode-$small.cpu")"
		a_m="$(median <"$work/$play-$mode-$large.mcpu")"
		r="$(ratio "$a_ms" "$b_ms")"
		met=no
		awk -v r="$r" 'BEGIN {exit !(r <= 3)}' && met=yes
		name="$play"
		[ "$play" = deploy ] && name="deploy.yml mode=$mode"
		echo "bench: scale ratio=hosts_${large}/hosts_${small} play=$name deploy_s=$r bytes_to_targets=$(ratio "$a_b" "$b_b") ansible_cpu_s=$(ratio "$a_c" "$b_c") floor_s=$(ratio $((a_m / cores)) "$b_ms") target_deploy_s<=3 met=$met"
	done
fi
