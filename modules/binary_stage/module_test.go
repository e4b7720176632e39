package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chezlepro/sovereign/internal/ansible"
	"github.com/chezlepro/sovereign/internal/fsutil"
	"github.com/chezlepro/sovereign/internal/lock"
)

func withCheck(a map[string]any) map[string]any {
	b := map[string]any{"_ansible_check_mode": true, "_ansible_diff": true}
	for k, v := range a {
		b[k] = v
	}
	return b
}

func strs(v any) []string {
	var out []string
	for _, e := range v.([]any) {
		out = append(out, e.(string))
	}
	return out
}

// check, real, check, real: check mode predicts each real run exactly and
// writes nothing; the second real run is a no-op.
func TestCheckModePredictsRealRun(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo app 1.0")
	args := f.args(src, sum, "1.0", "green")

	c1 := mustOK(t, withCheck(args))
	if c1["changed"] != true {
		t.Fatalf("first check run: changed = %v", c1["changed"])
	}
	if _, err := os.Lstat(f.root); !os.IsNotExist(err) {
		t.Fatalf("check mode created %s (err %v)", f.root, err)
	}
	r1 := mustOK(t, args)
	if r1["changed"] != true || r1["staged"] != true {
		t.Fatalf("first real run: %v", r1)
	}
	if !slices.Equal(strs(c1["changes"]), strs(r1["changes"])) {
		t.Fatalf("check predicted %q, real run did %q", c1["changes"], r1["changes"])
	}
	for _, k := range []string{"release", "release_path", "sha256", "size", "previous", "binary_path"} {
		if fmt.Sprint(c1[k]) != fmt.Sprint(r1[k]) {
			t.Errorf("%s: check said %v, real run %v", k, c1[k], r1[k])
		}
	}
	c2 := mustOK(t, withCheck(args))
	r2 := mustOK(t, args)
	if c2["changed"] != false || r2["changed"] != false || len(strs(r2["changes"])) != 0 {
		t.Fatalf("second runs not no-ops: check %v, real %v", c2, r2)
	}
	if want := "releases/1.0-" + sum[:12]; f.link("green") != want {
		t.Fatalf("slot = %q, want %q", f.link("green"), want)
	}
	if r2["binary_path"] != filepath.Join(f.root, "green", "app") || r2["size"] != float64(len("#!/bin/sh\necho app 1.0\n")) {
		t.Fatalf("return values: %v", r2)
	}
	checkInvariants(t, f.root)
}

// A no-op writes nothing at all: no file under root changes its mtime or ctime.
func TestNoopWritesNothing(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	mustOK(t, args)
	before := treeStat(t, f.root)
	time.Sleep(20 * time.Millisecond)
	if r := mustOK(t, args); r["changed"] != false {
		t.Fatalf("changed = %v", r["changed"])
	}
	if after := treeStat(t, f.root); !maps(before, after) {
		t.Fatalf("no-op run touched files:\nbefore %v\nafter  %v", before, after)
	}
}

func treeStat(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		out[p] = fmt.Sprintf("%d/%d/%d", st.Mtim.Nano(), st.Ctim.Nano(), fi.Size())
		return nil
	})
	return out
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSwitchReportsPreviousAndDiff(t *testing.T) {
	f := newFixture(t)
	src1, sum1 := f.src("app1", "echo 1")
	src2, sum2 := f.src("app2", "echo 2")
	mustOK(t, f.args(src1, sum1, "1.0", "green"))
	args := f.args(src2, sum2, "2.0", "green")
	args["_ansible_diff"] = true
	r := mustOK(t, args)
	rel1, rel2 := "1.0-"+sum1[:12], "2.0-"+sum2[:12]
	if r["previous"] != filepath.Join(f.root, "releases", rel1) || r["previous_release"] != rel1 || r["release"] != rel2 {
		t.Fatalf("result: %v", r)
	}
	diffs := r["diff"].([]any)
	d := diffs[0].(map[string]any)
	if d["before"] != "green -> releases/"+rel1+"\n" || d["after"] != "green -> releases/"+rel2+"\n" {
		t.Fatalf("slot diff: %v", d)
	}
	rd := diffs[1].(map[string]any)
	if rd["before"] != rel1+"\n" || rd["after"] != rel1+"\n"+rel2+"\n" {
		t.Fatalf("releases diff: %v", rd)
	}
	// Back to release 1: no staging, only the switch.
	r = mustOK(t, f.args(src1, sum1, "1.0", "green"))
	if r["staged"] != false || r["changed"] != true || f.link("green") != "releases/"+rel1 {
		t.Fatalf("switch back: %v", r)
	}
}

func TestChecksumMismatchLeavesSlotUntouched(t *testing.T) {
	f := newFixture(t)
	src1, sum1 := f.src("app1", "echo 1")
	mustOK(t, f.args(src1, sum1, "1.0", "green"))
	src2, sum2 := f.src("app2", "echo 2")
	wrong := strings.Repeat("0", 64)
	r := mustFail(t, f.args(src2, wrong, "2.0", "green"), "want sha256:"+wrong)
	if msg := r["msg"].(string); !strings.Contains(msg, "slot still points at releases/1.0-"+sum1[:12]) ||
		!strings.HasPrefix(msg, "staged file from "+src2+" has sha256:"+sum2) {
		t.Fatalf("msg does not say clearly what differs and that the slot is untouched: %s", msg)
	}
	if r["changed"] != false || r["staged"] != false {
		t.Fatalf("a run that wrote nothing reports changed=%v staged=%v", r["changed"], r["staged"])
	}
	if f.link("green") != "releases/1.0-"+sum1[:12] {
		t.Fatalf("slot moved to %s", f.link("green"))
	}
	if rels := f.releases(); len(rels) != 1 {
		t.Fatalf("releases after mismatch: %q (no partial release may remain)", rels)
	}
	checkInvariants(t, f.root)
}

func TestRetentionNeverPrunesSlotTargets(t *testing.T) {
	f := newFixture(t)
	srcB, sumB := f.src("blue", "echo blue")
	mustOK(t, f.args(srcB, sumB, "0.1", "blue"))
	var last []string
	for i := 1; i <= 6; i++ {
		src, sum := f.src(fmt.Sprintf("g%d", i), fmt.Sprintf("echo %d", i))
		args := f.args(src, sum, fmt.Sprintf("1.%d", i), "green")
		args["keep_releases"] = 2
		r := mustOK(t, args)
		last = strs(r["removed"])
	}
	rels := f.releases()
	if len(rels) != 3 || !slices.Contains(rels, "0.1-"+sumB[:12]) {
		t.Fatalf("releases = %q: want blue's release plus the 2 most recent", rels)
	}
	if len(last) != 1 || !strings.HasPrefix(last[0], "1.4-") {
		t.Fatalf("last run removed %q, want the 1.4 release", last)
	}
	hist, _ := readHistory(&spec{StateDir: filepath.Join(f.root, stateDirName)})
	if got := hist[len(hist)-1].Removed; !slices.Equal(got, last) {
		t.Fatalf("history records removed %q, want %q", got, last)
	}
	checkInvariants(t, f.root)
}

// Retention follows the history, not modification times: an old release
// with a fresh mtime is still the oldest.
func TestRetentionIgnoresMtime(t *testing.T) {
	f := newFixture(t)
	var sums []string
	for i := 1; i <= 3; i++ {
		src, sum := f.src(fmt.Sprintf("g%d", i), fmt.Sprintf("echo %d", i))
		mustOK(t, f.args(src, sum, fmt.Sprintf("1.%d", i), "green"))
		sums = append(sums, sum)
	}
	oldest := filepath.Join(f.root, "releases", "1.1-"+sums[0][:12])
	future := time.Now().Add(time.Hour)
	os.Chtimes(oldest, future, future)
	src, sum := f.src("g4", "echo 4")
	args := f.args(src, sum, "1.4", "green")
	args["keep_releases"] = 3
	r := mustOK(t, args)
	if got := strs(r["removed"]); !slices.Equal(got, []string{"1.1-" + sums[0][:12]}) {
		t.Fatalf("removed %q, want the oldest by history", got)
	}
}

func TestRefusesSymlinksLeadingOutside(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	mustOK(t, f.args(src, sum, "1.0", "blue"))

	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(f.root, "green")); err != nil {
		t.Fatal(err)
	}
	mustFail(t, f.args(src, sum, "1.0", "green"), "outside releases_dir")
	if l := f.link("green"); l != outside {
		t.Fatalf("refused slot was changed to %q", l)
	}
	os.Remove(filepath.Join(f.root, "green"))
	os.Symlink("releases/../../../etc", filepath.Join(f.root, "green"))
	mustFail(t, f.args(src, sum, "1.0", "green"), "outside releases_dir")

	os.Remove(filepath.Join(f.root, "green"))
	os.Mkdir(filepath.Join(f.root, "green"), 0o755)
	mustFail(t, f.args(src, sum, "1.0", "green"), "is not a symlink: refusing to replace it")

	// A release directory that is a symlink is not followed.
	src2, sum2 := f.src("app2", "echo 2")
	os.Symlink(outside, filepath.Join(f.root, "releases", "2.0-"+sum2[:12]))
	mustFail(t, f.args(src2, sum2, "2.0", "blue"), "is a symlink")

	// Nor is a releases_dir that is a symlink.
	args := f.args(src, sum, "1.0", "blue")
	args["releases_dir"] = filepath.Join(f.dir, "rel-link")
	os.Symlink(outside, args["releases_dir"].(string))
	mustFail(t, args, "is a symlink")

	// Nor a state directory that is a symlink.
	state := filepath.Join(f.root, stateDirName)
	os.Rename(state, state+".moved")
	os.Symlink(outside, state)
	mustFail(t, f.args(src, sum, "1.0", "blue"), "state directory "+state+" is a symlink")

	entries, _ := os.ReadDir(outside)
	if len(entries) != 0 {
		t.Fatalf("something was written outside: %v", entries)
	}
}

func TestBadInputsFailClearly(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	for name, tc := range map[string]struct {
		edit func(map[string]any)
		want string
	}{
		"missing src":     {func(a map[string]any) { a["src"] = filepath.Join(f.dir, "nope") }, "src: lstat " + filepath.Join(f.dir, "nope") + ": no such file or directory"},
		"src is dir":      {func(a map[string]any) { a["src"] = f.dir }, "is not a regular file"},
		"relative root":   {func(a map[string]any) { a["root"] = "opt/app" }, "must be an absolute path"},
		"escaping root":   {func(a map[string]any) { a["root"] = f.dir + "/../x" }, `must not contain ".." elements`},
		"bad checksum":    {func(a map[string]any) { a["checksum"] = "sha256:xyz" }, "64 hexadecimal digits"},
		"missing slot":    {func(a map[string]any) { delete(a, "slot") }, "slot"},
		"no source":       {func(a map[string]any) { delete(a, "src") }, "src, url, manifest"},
		"symbolic mode":   {func(a map[string]any) { a["mode"] = "u=rwx" }, "octal"},
		"unknown cap":     {func(a map[string]any) { a["capabilities"] = []string{"cap_nope"} }, "unknown capability"},
		"manifest of dir": {func(a map[string]any) { a["manifest"] = f.dir }, "read manifest"},
	} {
		t.Run(name, func(t *testing.T) {
			args := f.args(src, sum, "1.0", "green")
			tc.edit(args)
			mustFail(t, args, tc.want)
			if _, err := os.Lstat(f.root); !os.IsNotExist(err) {
				t.Fatalf("a failed validation created %s", f.root)
			}
		})
	}
}

func TestStageFromURL(t *testing.T) {
	f := newFixture(t)
	body := []byte("#!/bin/sh\necho from url\n")
	sum := sha(body)
	var gets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app":
			gets++
			w.Write(body)
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	args := map[string]any{"url": srv.URL + "/app", "checksum": sum + "  app", "version": "1.0", "root": f.root, "slot": "green"}
	c := mustOK(t, withCheck(args))
	if gets != 0 || c["changed"] != true || c["size"] != nil {
		t.Fatalf("check mode downloaded (%d GETs) or claims a size: %v", gets, c)
	}
	r := mustOK(t, args)
	if gets != 1 || r["release"] != "1.0-"+sum[:12] || r["binary_path"] != filepath.Join(f.root, "green", "app") {
		t.Fatalf("download: %d GETs, %v", gets, r)
	}
	if r = mustOK(t, args); r["changed"] != false || gets != 1 {
		t.Fatalf("no-op downloaded again (%d GETs): %v", gets, r)
	}

	wrong := strings.Repeat("1", 64)
	args["checksum"], args["version"] = "sha256:"+wrong, "2.0"
	mustFail(t, args, "downloaded 24 bytes with sha256:"+sum+", want sha256:"+wrong)
	args["url"], args["checksum"] = srv.URL+"/missing", "sha256:"+sum
	mustFail(t, args, "HTTP 404 Not Found")
	args["url"], args["timeout"] = srv.URL+"/slow", 1
	mustFail(t, args, "no complete answer within timeout 1s")
	delete(args, "checksum")
	mustFail(t, args, "url needs a checksum")
	if f.link("green") != "releases/1.0-"+sum[:12] {
		t.Fatalf("failed downloads moved the slot to %q", f.link("green"))
	}
	checkInvariants(t, f.root)
}

func TestStageFromManifest(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("built", "echo v3.1.2")
	m := map[string]any{"name": "traefik", "version": "v3.1.2", "commit": "4f2a1c0e9b8d", "sha256": sum,
		"size": len("#!/bin/sh\necho v3.1.2\n"), "artifact": src}
	args := map[string]any{"manifest": writeManifest(t, m), "root": f.root, "slot": "blue",
		"smoke": []string{}, "owner": fmt.Sprint(os.Getuid())}
	r := mustOK(t, args)
	if r["release"] != "v3.1.2-"+sum[:12] || r["commit"] != "4f2a1c0e9b8d" || r["name"] != "traefik" ||
		r["binary_path"] != filepath.Join(f.root, "blue", "traefik") {
		t.Fatalf("result: %v", r)
	}
	meta, err := readMeta(r["release_path"].(string))
	if err != nil || meta.Commit != "4f2a1c0e9b8d" || meta.Version != "v3.1.2" {
		t.Fatalf("release record: %+v, %v", meta, err)
	}
	// The manifest's size is checked against the file before anything is written.
	m["size"] = 1
	mustFail(t, map[string]any{"manifest": writeManifest(t, m), "root": f.root, "slot": "green"}, "but manifest")
}

func TestRepairsTamperedRelease(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	r := mustOK(t, args)
	bin := filepath.Join(r["release_path"].(string), "app")
	if err := os.WriteFile(bin, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := mustOK(t, withCheck(args))
	if ch := strs(c["changes"]); len(ch) != 1 || !strings.Contains(ch[0], "repair release") {
		t.Fatalf("check mode: %q", ch)
	}
	r = mustOK(t, args)
	if r["changed"] != true || r["staged"] != false {
		t.Fatalf("repair run: %v", r)
	}
	if got, _, _ := fsutil.HashFile(bin); got != sum {
		t.Fatalf("binary not repaired: %s", got)
	}
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("after repair: %v", r)
	}
	checkInvariants(t, f.root)
}

// A touched binary (metadata changed, content intact) is re-hashed once and
// its record refreshed; reverify forces the hash without changing anything.
func TestTouchedReleaseIsReverified(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	r := mustOK(t, args)
	bin := filepath.Join(r["release_path"].(string), "app")
	future := time.Now().Add(time.Hour)
	os.Chtimes(bin, future, future)
	r = mustOK(t, args)
	if ch := strs(r["changes"]); r["changed"] != true || len(ch) != 1 || !strings.Contains(ch[0], "content verified") {
		t.Fatalf("touched: %v", r)
	}
	args["reverify"] = true
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("reverify of an intact release changed something: %v", r)
	}
}

func TestSmoke(t *testing.T) {
	f := newFixture(t)
	good, sumGood := f.src("good", "echo version 1.0")
	bad, sumBad := f.src("bad", "echo broken >&2; exit 3")
	args := f.args(good, sumGood, "1.0", "green")
	args["smoke"] = []string{"--version"}
	args["smoke_expect"] = "version 1.0"
	r := mustOK(t, args)
	if r["smoke_output"] != "version 1.0\n" {
		t.Fatalf("smoke_output = %q", r["smoke_output"])
	}

	args = f.args(bad, sumBad, "2.0", "green")
	args["smoke"] = []string{"--version"}
	r = mustFail(t, args, "exit status 3")
	if msg := r["msg"].(string); !strings.Contains(msg, "broken") || !strings.Contains(msg, "slot still points at releases/1.0-") {
		t.Fatalf("msg: %s", msg)
	}
	if f.link("green") != "releases/1.0-"+sumGood[:12] {
		t.Fatalf("a failed smoke test moved the slot to %s", f.link("green"))
	}
	// The release was staged (and stays, complete) before the smoke test failed.
	if r["changed"] != true || r["staged"] != true || !slices.Contains(f.releases(), "2.0-"+sumBad[:12]) {
		t.Fatalf("after the failed smoke test: changed=%v staged=%v releases %q", r["changed"], r["staged"], f.releases())
	}

	args = f.args(good, sumGood, "1.0", "blue")
	args["smoke"] = []string{"--version"}
	args["smoke_expect"] = "version 9"
	mustFail(t, args, `printed no "version 9"`)
	if f.link("blue") != "" {
		t.Fatal("blue created despite a failed smoke test")
	}

	hang, sumHang := f.src("hang", "exec sleep 30")
	args = f.args(hang, sumHang, "3.0", "blue")
	args["smoke"], args["smoke_timeout"] = []string{"x"}, 1
	start := time.Now()
	mustFail(t, args, "did not finish within 1s")
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the smoke timeout took %s", time.Since(start))
	}
	checkInvariants(t, f.root)
}

func TestLeftoversOfKilledRunsAreCleaned(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	mustOK(t, args)
	junk := []string{
		filepath.Join(f.root, "releases", ".2.0-aaaaaaaaaaaa.tmp-1-1-x"),
		filepath.Join(f.root, "releases", "1.0-"+sum[:12], ".app.tmp-1-2-x"),
		filepath.Join(f.root, stateDirName, ".history.json.tmp-1-3-x"),
	}
	os.MkdirAll(filepath.Join(junk[0], "sub"), 0o755)
	os.WriteFile(junk[1], []byte("half"), 0o644)
	os.WriteFile(junk[2], []byte("{"), 0o644)
	link := filepath.Join(f.root, ".green.tmp-1-4-x")
	os.Symlink("releases/nowhere", link)
	junk = append(junk, link)
	slices.Sort(junk)

	c := mustOK(t, withCheck(args))
	if got := strs(c["cleaned"]); !slices.Equal(sorted(got), junk) {
		t.Fatalf("check mode would clean %q, want %q", got, junk)
	}
	r := mustOK(t, args)
	if got := strs(r["cleaned"]); r["changed"] != true || !slices.Equal(sorted(got), junk) {
		t.Fatalf("cleaned %q, want %q", got, junk)
	}
	for _, j := range junk {
		if _, err := os.Lstat(j); !os.IsNotExist(err) {
			t.Errorf("%s still there", j)
		}
	}
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("after cleaning: %v", r)
	}
}

func sorted(l []string) []string { l = slices.Clone(l); slices.Sort(l); return l }

func TestOwnershipModeAndCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown and set capabilities")
	}
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	args["owner"], args["group"], args["mode"] = "4242", "4343", "0750"
	args["capabilities"] = []string{"cap_net_bind_service"}
	r := mustOK(t, args)
	bin := filepath.Join(r["release_path"].(string), "app")
	fi, _ := os.Stat(bin)
	st := fi.Sys().(*syscall.Stat_t)
	caps, _ := readCaps(bin)
	if st.Uid != 4242 || st.Gid != 4343 || fi.Mode().Perm() != 0o750 || caps.String() != "cap_net_bind_service=ep" {
		t.Fatalf("attributes: uid %d gid %d mode %v caps %s", st.Uid, st.Gid, fi.Mode(), caps)
	}
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("second run: %v", r)
	}
	// A new owner clears capabilities in the kernel: they must come back.
	args["owner"] = "4444"
	r = mustOK(t, args)
	if ch := strs(r["changes"]); len(ch) != 1 || !strings.Contains(ch[0], "owner 4242 -> 4444") {
		t.Fatalf("changes: %q", ch)
	}
	if caps, _ = readCaps(bin); caps.String() != "cap_net_bind_service=ep" {
		t.Fatalf("capabilities after chown: %s", caps)
	}
	delete(args, "capabilities")
	mustOK(t, args)
	if caps, _ = readCaps(bin); !caps.empty() {
		t.Fatalf("capabilities not removed: %s", caps)
	}
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("last run: %v", r)
	}
	// Names resolve through /etc/passwd and /etc/group.
	args["owner"], args["group"] = "root", "root"
	mustOK(t, args)
	fi, _ = os.Stat(bin)
	if st = fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Fatalf("by name: uid %d gid %d", st.Uid, st.Gid)
	}
}

// The history records each change in order, with the causality a user
// needs: which slot, from which release to which, from what source.
func TestHistoryRecordsChanges(t *testing.T) {
	f := newFixture(t)
	src1, sum1 := f.src("a1", "echo 1")
	src2, sum2 := f.src("a2", "echo 2")
	mustOK(t, f.args(src1, sum1, "1.0", "green"))
	mustOK(t, f.args(src2, sum2, "2.0", "green"))
	mustOK(t, f.args(src2, sum2, "2.0", "green"))
	data, _ := os.ReadFile(filepath.Join(f.root, stateDirName, "history.json"))
	var h history
	if err := json.Unmarshal(data, &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Installs) != 2 {
		t.Fatalf("history has %d entries, want 2 (the no-op adds none): %s", len(h.Installs), data)
	}
	e := h.Installs[1]
	if e.Slot != "green" || e.Release != "2.0-"+sum2[:12] || e.Previous != "1.0-"+sum1[:12] || !e.Staged || e.Source != src2 {
		t.Fatalf("entry: %+v", e)
	}
}

// Two runs on one root are serialised: while another run holds the lock,
// a run with work to do waits, then fails naming the lock.
func TestLockSerialisesRuns(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	mustOK(t, f.args(src, sum, "1.0", "green"))
	lk, err := lock.Acquire(context.Background(), filepath.Join(f.root, stateDirName, "lock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release()
	src2, sum2 := f.src("app2", "echo 2")
	args := f.args(src2, sum2, "2.0", "green")
	args["lock_timeout"] = 1
	mustFail(t, args, "is held by another run")
	if f.link("green") != "releases/1.0-"+sum[:12] {
		t.Fatalf("slot moved while locked: %s", f.link("green"))
	}
	// lock_timeout is a float, as in the other modules: a fraction of a
	// second is waited as given ("waited 201ms": below a second, a wait
	// prints in milliseconds).
	args["lock_timeout"] = 0.2
	res := mustFail(t, args, "is held by another run")
	if msg := res["msg"].(string); !regexp.MustCompile(`waited \d+ms`).MatchString(msg) {
		t.Fatalf("lock_timeout 0.2 did not wait a fraction of a second: %s", msg)
	}
	// A no-op needs no lock.
	mustOK(t, f.args(src, sum, "1.0", "green"))
}

// Releases outside root: slots hold absolute targets, and everything else
// works the same.
func TestReleasesDirOutsideRoot(t *testing.T) {
	f := newFixture(t)
	rel := filepath.Join(f.dir, "srv", "releases")
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	args["releases_dir"] = rel
	r := mustOK(t, args)
	if want := filepath.Join(rel, "1.0-"+sum[:12]); f.link("green") != want || r["release_path"] != want {
		t.Fatalf("slot = %q, release_path %v, want %q", f.link("green"), r["release_path"], want)
	}
	if r = mustOK(t, args); r["changed"] != false {
		t.Fatalf("second run: %v", r)
	}
}

// A slot left dangling (its release deleted by hand) is restaged in place.
func TestDanglingSlotIsRestaged(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	r := mustOK(t, args)
	os.RemoveAll(r["release_path"].(string))
	r = mustOK(t, args)
	if r["staged"] != true || slices.ContainsFunc(strs(r["changes"]), func(c string) bool { return strings.HasPrefix(c, "switch") }) {
		t.Fatalf("restage: %v", r["changes"])
	}
	checkInvariants(t, f.root)
}

// A run that waited for the lock while another run did the same work finds
// nothing left to do and says so.
func TestWaiterFindsWorkDone(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	args := f.args(src, sum, "1.0", "green")
	os.MkdirAll(filepath.Join(f.root, stateDirName), 0o755)
	lk, err := lock.Acquire(context.Background(), filepath.Join(f.root, stateDirName, "lock"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan map[string]any)
	go func() { done <- execModule(t, args) }()
	time.Sleep(300 * time.Millisecond) // the module has planned and waits for the lock

	// The other run, under the lock.
	o := Options{Src: ansible.Path(src), Checksum: "sha256:" + sum, Version: "1.0", Root: ansible.Path(f.root), Slot: "green", Binary: "app",
		KeepReleases: 5, SmokeTimeout: 30, Timeout: 60, LockTimeout: 60}
	s, err := resolveOptions(&o)
	if err != nil {
		t.Fatal(err)
	}
	if err := observeSource(s); err != nil {
		t.Fatal(err)
	}
	obs, err := observe(s)
	if err != nil {
		t.Fatal(err)
	}
	p := makePlan(s, obs)
	if _, err := apply(context.Background(), s, obs, &p); err != nil {
		t.Fatal(err)
	}
	lk.Release()

	r := <-done
	if r["failed"] == true || r["changed"] != false || !strings.Contains(r["msg"].(string), "already points at release") {
		t.Fatalf("the waiting run: %v", r)
	}
	checkInvariants(t, f.root)
}

// A history that does not parse stops the run before anything changes:
// retention must not guess which releases are old.
func TestCorruptHistoryRefused(t *testing.T) {
	f := newFixture(t)
	src, sum := f.src("app", "echo 1")
	mustOK(t, f.args(src, sum, "1.0", "green"))
	hist := filepath.Join(f.root, stateDirName, "history.json")
	if err := os.WriteFile(hist, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	src2, sum2 := f.src("app2", "echo 2")
	res := mustFail(t, f.args(src2, sum2, "2.0", "green"), "history "+hist+" is not valid JSON")
	if msg := res["msg"].(string); !strings.HasSuffix(msg, ": fix or move it aside") {
		t.Fatalf("msg %q does not say what to do", msg)
	}
	if f.link("green") != "releases/1.0-"+sum[:12] {
		t.Fatalf("slot moved despite the corrupt history: %s", f.link("green"))
	}
}
