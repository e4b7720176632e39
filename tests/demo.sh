#!/usr/bin/env bash
# make demo: the whole pipeline, end to end, on the embedded lab.
#
# Boots a lab of three real systemd hosts (h1: forge and build host; h2, h3:
# app hosts), then, with the collection's own playbooks:
#   1. makes an "upstream" git repository of demo/webapp on h1 (tags v1, v2,
#      and v3, whose /healthz answers 500) - the lab has no internet;
#   2. mirrors it into h1's forge (forge_mirror);
#   3. builds v1 on h1 offline, in a network namespace with no network, and
#      fetches the artifact and its manifest to the controller;
#   4. stages and flips v1 on h2 and h3 (first deploy: blue);
#   5. builds v2 and flips h2 then h3 to it (green) while a load generator on
#      h1 sends requests to both, a new connection per request;
#   6. builds the broken v3: h2's health gate fails, the flip is undone and
#      the play stops before h3; traffic stays on v2;
#   7. rolls back (rollback.yml): both hosts return to v1 on blue, under load;
#   8. reports the status (status.yml).
# Before step 1, monitoring.yml puts Prometheus and Alertmanager on h1 and
# node_exporter everywhere, from Debian's packages carried by the
# controller (local_apt: the lab has no route out); after each deploy and
# the rollback, the demo reads what Prometheus scraped from the modules.
# Prints a summary: each step, what changed, how long it took, the
# requests served and failed during each flip, and the metric values
# Prometheus holds after each flip. Exits non-zero when a step
# does not end as expected or any request failed.
#
#   tests/demo.sh            (make demo)       KEEP_LAB=1 keeps the lab up; DEMO_LAB=NAME names it
#
# Needs: root, Debian 12, the modules built (make build). Installs what else
# is missing with tests/setup.sh (its lab group; Go when go.mod's is absent).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

LAB="${DEMO_LAB:-demo}" # another name lets two demos run side by side
LAB_SH="$REPO_ROOT/tests/lab/lab.sh"
KEEP_LAB="${KEEP_LAB:-0}"
WORK="$REPO_ROOT/.build/demo"
ARTIFACTS="/var/tmp/chezlepro-sovereign/$LAB"

say() { printf '\n=== %s\n' "$*"; }
die() {
	printf 'demo: %s\n' "$*" >&2
	exit 1
}

# ------------------------------------------------------------ prerequisites

[ "$(id -u)" -eq 0 ] || die "must run as root (the lab boots systemd-nspawn hosts)"
setup_for lab || die "the set-up failed (tests/setup.sh lab)"
for m in source_build binary_stage bluegreen_unit; do
	[ -x "bin/${m}_linux_amd64" ] || die "bin/${m}_linux_amd64 is missing: run make build (make demo does)"
done

rm -rf "$WORK" "$ARTIFACTS"
mkdir -p "$WORK"
# h1 installs Go with the go_toolchain role from an archive of the Go
# the set-up chose (GO_ROOT; made once, cached in .build/toolchain/).
tests/toolchain/archive.sh >/dev/null
ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0

teardown() {
	local rc=$?
	if [ "$KEEP_LAB" = 1 ]; then
		printf '\nThe lab is kept (KEEP_LAB=1): ansible-playbook -i %s -i inventories/lab playbooks/status.yml\n' "${INVENTORY:-?}"
		printf 'Remove it with: %s down --name %s; rm -rf %s\n' "$LAB_SH" "$LAB" "$ARTIFACTS"
	else
		"$LAB_SH" down --name "$LAB" >"$WORK/lab-down.log" 2>&1 || echo "demo: lab teardown failed, see $WORK/lab-down.log" >&2
		rm -rf "$ARTIFACTS"
	fi
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

say "booting the lab '$LAB' (h1 forge and build host, Go installed there by the go_toolchain role; h2 and h3 app hosts)"
t0=$(date +%s)
"$LAB_SH" down --name "$LAB" >/dev/null 2>&1 || true
INVENTORY="$("$LAB_SH" up --name "$LAB" --hosts 3 2>"$WORK/lab-up.log" | tail -n1)" ||
	{ tail -n 20 "$WORK/lab-up.log" >&2; die "the lab did not boot (log: $WORK/lab-up.log)"; }
echo "lab up in $(($(date +%s) - t0)) s; inventory $INVENTORY"

say "building the load generator (tests/loadgen) and putting it on h1"
CGO_ENABLED=0 go build -trimpath -o "$WORK/loadgen" ./tests/loadgen
"$LAB_SH" ssh --name "$LAB" h1 'cat >/usr/local/bin/loadgen && chmod 0755 /usr/local/bin/loadgen' <"$WORK/loadgen"

# ------------------------------------------------------------------- steps

STEPS=()   # "n|title|result|changed|seconds|log"
n=0

# run_step TITLE EXPECTED_RC LOG PLAYBOOK [ARGS...]: one ansible-playbook run
# with the lab's inventory and inventories/lab; records its result.
run_step() {
	local title="$1" want="$2" log="$3"
	shift 3
	n=$((n + 1))
	say "step $n: $title"
	local start rc=0
	start=$(date +%s%N)
	ansible-playbook -i "$INVENTORY" -i inventories/lab -e "lab_name=$LAB" -e "repo_root=$REPO_ROOT" "$@" >"$log" 2>&1 || rc=$?
	local secs changed result
	secs=$(awk -v ns="$(($(date +%s%N) - start))" 'BEGIN { printf "%.1f", ns / 1e9 }')
	changed="$(awk '/^PLAY RECAP/ { on = 1; next } on && / : ok=/ { split($4, c, "="); printf "%s%s=%s", sep, $1, c[2]; sep = " " }' "$log")"
	if [ "$rc" -eq "$want" ]; then
		result=ok
		[ "$want" -eq 0 ] || result="failed, as expected"
	else
		result="UNEXPECTED (exit $rc, want $want)"
	fi
	grep -E '"msg": "(webapp|flipped|updated|would)' "$log" | sed 's/^ *"msg": "/  /; s/"$//' | cut -c1-160 || true
	echo "  -> $result; changed: ${changed:-none}; ${secs} s (log: ${log#"$REPO_ROOT"/})"
	STEPS+=("$n|$title|$result|${changed:-none}|$secs")
	if [ "$rc" -ne "$want" ]; then
		tail -n 30 "$log" >&2
		FAILED_STEP="step $n ($title)"
		return 1
	fi
}

load_start() {
	"$LAB_SH" ssh --name "$LAB" h1 systemd-run --unit=demo-load --collect --quiet /usr/local/bin/loadgen \
		-target http://h2:8080/ -target http://h3:8080/ -rate 150 -concurrency 8 -out /var/tmp/demo-load.json
	sleep 2
}
# load_stop NAME: stops the generator and keeps its report as WORK/load-NAME.json.
load_stop() {
	sleep 1
	"$LAB_SH" ssh --name "$LAB" h1 'systemctl stop demo-load.service && cat /var/tmp/demo-load.json' >"$WORK/load-$1.json"
	LOADS+=("$n|$1")
}
LOADS=()
FAILED_STEP=""

# metrics_snapshot NAME: what Prometheus (h1) scraped from the modules after
# a step, and the alerts Alertmanager holds, kept as WORK/metrics-NAME.json.
METRICS=()
metrics_snapshot() {
	sleep 3 # a scrape and an evaluation (1 s each) and the alert's notification
	"$LAB_SH" ssh --name "$LAB" h1 "curl -sf -G http://127.0.0.1:9090/api/v1/query --data-urlencode 'query={__name__=~\"chezlepro_bluegreen_.*\",service=\"webapp\"}'; echo; curl -sf http://127.0.0.1:9093/api/v2/alerts" \
		>"$WORK/metrics-$1.json" || echo "demo: could not read Prometheus after $1" >&2
	METRICS+=("$n|$1")
}

main_steps() {
	run_step "monitoring.yml: Prometheus+Alertmanager on h1, node_exporter" 0 "$WORK/00-monitoring.log" \
		playbooks/monitoring.yml -e sovereign_offline_packages=true -e "local_apt_repo_dir=$REPO_ROOT/.build/local-apt" \
		-e monitoring_address_var=lab_address -e monitoring_scrape_interval=1s -e monitoring_evaluation_interval=1s || return 1
	run_step "upstream: demo/webapp v1 v2 v3 -> h1:/srv/upstream/webapp.git" 0 "$WORK/01-upstream.log" \
		tests/e2e/playbooks/pipeline/upstream.yml || return 1
	run_step "mirror.yml: forge_mirror into h1:/srv/git/webapp.git" 0 "$WORK/02-mirror.log" playbooks/mirror.yml || return 1
	run_step "build.yml v1 on h1, network cut, fetched" 0 "$WORK/03-build-v1.log" playbooks/build.yml -e webapp_version=v1 || return 1
	run_step "deploy.yml v1: stage + flip (first deploy)" 0 "$WORK/04-deploy-v1.log" playbooks/deploy.yml -e webapp_version=v1 || return 1
	metrics_snapshot "deploy v1"
	run_step "build.yml v2" 0 "$WORK/05-build-v2.log" playbooks/build.yml -e webapp_version=v2 || return 1
	load_start
	run_step "deploy.yml v2 under load: flip to green" 0 "$WORK/06-deploy-v2.log" playbooks/deploy.yml -e webapp_version=v2 || return 1
	load_stop "deploy v2"
	metrics_snapshot "deploy v2"
	run_step "build.yml v3 (its /healthz answers 500)" 0 "$WORK/07-build-v3.log" playbooks/build.yml -e webapp_version=v3 || return 1
	load_start
	run_step "deploy.yml v3 under load: gate fails on h2" 2 "$WORK/08-deploy-v3.log" playbooks/deploy.yml -e webapp_version=v3 || return 1
	load_stop "deploy v3"
	metrics_snapshot "deploy v3"
	load_start
	run_step "rollback.yml under load" 0 "$WORK/09-rollback.log" playbooks/rollback.yml || return 1
	load_stop "rollback"
	metrics_snapshot "rollback"
	run_step "status.yml (changes nothing)" 0 "$WORK/10-status.log" playbooks/status.yml || return 1
}

t_all=$(date +%s)
main_steps || true

# ------------------------------------------------------------------ checks

problems=()
[ -z "$FAILED_STEP" ] || problems+=("$FAILED_STEP did not end as expected")
if [ -z "$FAILED_STEP" ]; then
	python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["isolation"] != "netns")' "$ARTIFACTS/artifacts/webapp/v1/manifest.json" ||
		problems+=("v1 was not built in a network namespace")
	grep -q "the blue slot points again at v1-" "$WORK/08-deploy-v3.log" || problems+=("after v3's failed gate, h2's blue slot was not pointed back at v1")
	! grep -qE '^h3 .*changed=[1-9]' "$WORK/08-deploy-v3.log" || problems+=("h3 was changed by the v3 deploy (it should not be reached)")
	# v3 failed its gate: steered, it must not have answered a single request.
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(any(k.startswith("v3") for t in r["targets"] for k in t["served"]))' \
		"$WORK/load-deploy v3.json" || problems+=("v3 answered requests while its gate ran (the flip was not steered)")
	# The alert rides the module's metrics: v3's failed gate raises it, the rollback resolves it.
	firing='import json,sys; l=open(sys.argv[1]).read().split("\n"); sys.exit(not any(a["labels"]["alertname"] == "BlueGreenFlipFailed" and a["status"]["state"] == "active" for a in json.loads(l[1] or "[]")))'
	python3 -c "$firing" "$WORK/metrics-deploy v3.json" || problems+=("Alertmanager had no BlueGreenFlipFailed alert after v3's failed gate")
	! python3 -c "$firing" "$WORK/metrics-rollback.json" || problems+=("BlueGreenFlipFailed still fired after the rollback")
	[ "$(grep -c 'webapp: active blue (v1), previous green' "$WORK/10-status.log")" -eq 2 ] ||
		problems+=("status after the rollback does not show v1 active on blue on both app hosts")
fi

# ----------------------------------------------------------------- summary

summary="$WORK/summary.txt"
{
	printf '\n================================ make demo: summary ================================\n'
	printf 'lab %s: h1 forge + build host, h2 h3 app hosts (demo/webapp, blue/green on :8080)\n\n' "$LAB"
	printf '%-3s %-62s %-20s %-16s %8s\n' '#' step result changed time
	for s in "${STEPS[@]}"; do
		IFS='|' read -r num title result changed secs <<<"$s"
		printf '%-3s %-62s %-20s %-16s %7ss\n' "$num" "$title" "$result" "$changed" "$secs"
	done
	printf '\nrequests during the flips (load generator on h1, 150 req/s per host, a new connection each):\n'
	for l in "${LOADS[@]}"; do
		IFS='|' read -r num name <<<"$l"
		python3 - "$WORK/load-$name.json" "$num" "$name" <<-'EOF'
			import json, sys
			rep = json.load(open(sys.argv[1]))
			print("  step %s, %s:" % (sys.argv[2], sys.argv[3]))
			for t in rep["targets"]:
			    host = t["url"].split("/")[2].split(":")[0]
			    served = sorted(t["served"].items(), key=lambda kv: kv[1]["first_ms"])
			    who = ", ".join("%s %d (%.1f-%.1f s)" % (k, v["count"], v["first_ms"] / 1000, v["last_ms"] / 1000) for k, v in served)
			    errs = ", ".join("%s: %d" % kv for kv in t["errors"].items())
			    print("    %s: %5d served, %d failed%s  [%s]" % (host, t["ok"], t["failed"], (" (" + errs + ")") if errs else "", who))
		EOF
	done
	total_sent=0
	total_failed=0
	for l in "${LOADS[@]}"; do
		IFS='|' read -r _ name <<<"$l"
		read -r s f < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["sent"], r["failed"])' "$WORK/load-$name.json")
		total_sent=$((total_sent + s))
		total_failed=$((total_failed + f))
	done
	printf '\ntotal during the flips: %d requests, %d failed\n' "$total_sent" "$total_failed"
	printf '\nwhat Prometheus (h1) scraped from bluegreen_unit after each flip, and the alerts in Alertmanager:\n'
	for m in "${METRICS[@]}"; do
		IFS='|' read -r num name <<<"$m"
		python3 - "$WORK/metrics-$name.json" "$num" "$name" <<-'EOF' || problems+=("no metrics from Prometheus after $name")
			import json, sys
			lines = open(sys.argv[1]).read().split("\n")
			series = json.loads(lines[0])["data"]["result"]
			alerts = json.loads(lines[1]) if len(lines) > 1 and lines[1].strip() else []
			print("  step %s, %s:" % (sys.argv[2], sys.argv[3]))
			hosts = {}
			for s in series:
			    m = s["metric"]
			    hosts.setdefault(m["instance"], []).append((m, s["value"][1]))
			if not hosts:
			    sys.exit(1)
			for host, ss in sorted(hosts.items()):
			    v = {}
			    for m, val in ss:
			        n = m["__name__"].replace("chezlepro_bluegreen_", "")
			        if n == "active_colour" and val == "1":
			            v["active"] = m["colour"]
			        elif n.startswith("last_change_"):
			            v[n] = (m["action"], m["to"], val)
			        elif n.endswith("_total"):
			            v[n] = val
			    last = v.get("last_change_success", ("?", "?", "?"))
			    print("    %s: active_colour=%s  last_change{action=%s,to=%s} success=%s duration=%.2fs  changes_total=%s change_failures_total=%s gate_failures_total=%s rollbacks_total=%s" % (
			        host, v.get("active", "none"), last[0], last[1], last[2], float(v.get("last_change_duration_seconds", ("", "", "0"))[2]),
			        v.get("changes_total"), v.get("change_failures_total"), v.get("gate_failures_total"), v.get("rollbacks_total")))
			firing = [a for a in alerts if a["status"]["state"] == "active"]
			for a in firing:
			    print("    alert %s firing: %s" % (a["labels"]["alertname"], a["annotations"].get("summary", "")))
			if not firing:
			    print("    no alert firing")
		EOF
	done
	printf 'the flips steer the port: a colour gets no request before its gate passes (v3 served none above).\n'
	printf 'demo run: %d s; logs in %s\n' "$(($(date +%s) - t_all))" "${WORK#"$REPO_ROOT"/}"
	[ "$total_failed" -eq 0 ] || problems+=("$total_failed requests failed during the flips")
	if [ ${#problems[@]} -eq 0 ]; then
		printf 'RESULT: PASS\n'
	else
		printf 'RESULT: FAIL\n'
		printf '  - %s\n' "${problems[@]}"
	fi
} | tee "$summary"
grep -q '^RESULT: PASS' "$summary"
