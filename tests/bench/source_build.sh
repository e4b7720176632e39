#!/usr/bin/env bash
# Benchmark of chezlepro.sovereign.source_build on this machine, against what
# a user would otherwise type:
#
#   cold  the module builds the sample from its git mirror into an empty work
#         tree and store, with an empty Go build cache; the baseline is the
#         same `go build` by hand in a checked-out tree (same flags, same
#         offline settings, same network namespace, its own empty cache).
#         Runs alternate between the two (ABBA order); medians over RUNS
#         (default 3).
#         overhead_ms is what the module adds around the build command
#         (its wall time minus the build's, as the manifest records it).
#   noop  the same request again, the artifact being in the store (median of
#         NOOP_RUNS, default 5).
#
# Prints:  bench: build scenario=cold ms=... baseline_ms=... ratio=...
#          bench: build scenario=noop ms=...
# The sample is demo/webapp (golang.org/x/sys vendored); SAMPLE overrides it.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

runs="${RUNS:-3}"
noop_runs="${NOOP_RUNS:-5}"
sample="${SAMPLE:-$REPO_ROOT/demo/webapp}"
[ -f "$sample/go.mod" ] || sample="$REPO_ROOT/tests/testdata/source_build/hello"
go_bin="$(command -v go)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bin="$REPO_ROOT/bin/source_build_linux_amd64"
if [ ! -x "$bin" ] || [ "$(uname -m)" != x86_64 ]; then
	bin="$work/source_build"
	CGO_ENABLED=0 go build -trimpath -o "$bin" ./modules/source_build
fi

# The mirror: the sample as one commit, tagged v1.
(
	export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@lab GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@lab
	export GIT_AUTHOR_DATE=2026-01-01T10:00:00Z GIT_COMMITTER_DATE=2026-01-01T10:00:00Z GIT_CONFIG_GLOBAL=/dev/null
	cp -a "$sample" "$work/src"
	cd "$work/src"
	git init -q -b main && git add -A && git commit -q -m v1 && git tag -a -m v1 v1
	git clone -q --bare . "$work/sample.git"
)
epoch="$(git -C "$work/src" show -s --format=%ct v1)"

netless=()
if unshare -n true 2>/dev/null; then netless=(unshare -n); fi

now_ms() { echo $(($(date +%s%N) / 1000000)); }

args() { # dest store -> args file
	module_defaults source_build >"$work/args-$(basename "$1").json" <<JSON
{"repo": "$work/sample.git", "version": "v1", "dest": "$1", "store": "$2",
 "go_binary": "$go_bin", "version_vars": {"main.version": "{version}"}}
JSON
	echo "$work/args-$(basename "$1").json"
}

module_ms=()
base_ms=()
overhead_ms=()
module_run() { # i: the module builds v1 from the mirror, from nothing
	local a t0
	a="$(args "$work/cold-$1/src" "$work/cold-$1/store")"
	t0=$(now_ms)
	GOCACHE="$work/cold-$1/gocache" "$bin" "$a" >"$work/cold-$1.json"
	module_ms+=($(($(now_ms) - t0)))
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r.get("built") else "module run failed: " + r.get("msg",""))' "$work/cold-$1.json"
	# What the module adds around the build command itself (clone, checks,
	# hashing, store): its wall time minus the build's, from the manifest.
	overhead_ms+=($((module_ms[-1] - $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifest"]["build_duration_ms"])' "$work/cold-$1.json"))))
	rm -rf "$work/cold-$1/gocache"
}
baseline_run() { # i: the same go build by hand in a checked-out tree
	local t0
	rm -rf "$work/out" && mkdir -p "$work/out"
	t0=$(now_ms)
	(cd "$work/src" && env GOCACHE="$work/base-$1/gocache" GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local \
		CGO_ENABLED=0 SOURCE_DATE_EPOCH="$epoch" "${netless[@]}" \
		go build -trimpath -ldflags "-s -w -X main.version=v1 -buildid=" -o "$work/out/app" .)
	base_ms+=($(($(now_ms) - t0)))
	rm -rf "$work/base-$1"
}
# Alternate which goes first, so that drift in the machine's load hits both.
for i in $(seq "$runs"); do
	if [ $((i % 2)) -eq 1 ]; then
		module_run "$i"
		baseline_run "$i"
	else
		baseline_run "$i"
		module_run "$i"
	fi
done
cold="$(printf '%s\n' "${module_ms[@]}" | median)"
base="$(printf '%s\n' "${base_ms[@]}" | median)"
ratio="$(awk -v a="$cold" -v b="$base" 'BEGIN {printf "%.3f", a / b}')"
join() { local IFS=,; echo "$*"; }
overhead="$(printf '%s\n' "${overhead_ms[@]}" | median)"
echo "bench: build scenario=cold ms=$cold baseline_ms=$base ratio=$ratio overhead_ms=$overhead runs=$runs sample=$(basename "$sample") module_runs=$(join "${module_ms[@]}") baseline_runs=$(join "${base_ms[@]}")"

a="$(args "$work/cold-1/src" "$work/cold-1/store")"
noop=()
for _ in $(seq "$noop_runs"); do
	t0=$(now_ms)
	"$bin" "$a" >"$work/noop.json"
	noop+=($(($(now_ms) - t0)))
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if not r.get("changed") and not r.get("failed") else "not a no-op: " + json.dumps(r)[:500])' "$work/noop.json"
done
echo "bench: build scenario=noop ms=$(printf '%s\n' "${noop[@]}" | median) runs=$noop_runs"
