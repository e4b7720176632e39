package systemd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadJournalArgsAndLines(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	script := filepath.Join(dir, "journalctl")
	body := "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + argsFile + "\nprintf 'line one\\nline two\\n'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	since := time.Unix(1700000000, 500)
	lines, err := readJournal(context.Background(), script, "webapp-green.service", since, 30)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lines, []string{"line one", "line two"}) {
		t.Fatalf("lines %q", lines)
	}
	got, _ := os.ReadFile(argsFile)
	want := "--unit\nwebapp-green.service\n--lines\n30\n--no-pager\n--quiet\n--output\nshort-iso\n--since\n@1700000000\n"
	if string(got) != want {
		t.Fatalf("journalctl args:\n%s\nwant:\n%s", got, want)
	}
}

func TestReadJournalFailureCarriesStderr(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'No journal files were found.' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := readJournal(context.Background(), script, "x.service", time.Time{}, 5)
	if err == nil || !strings.Contains(err.Error(), "No journal files were found.") {
		t.Fatalf("err %v", err)
	}
}

func TestReadJournalEmpty(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "journalctl")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lines, err := readJournal(context.Background(), script, "x.service", time.Time{}, 5)
	if err != nil || lines != nil {
		t.Fatalf("lines %q err %v", lines, err)
	}
}

func TestFakeTracksFilesLikeSystemd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := NewFake(dir)
	st, _ := f.Status(ctx, "a.service")
	if st.LoadState != "not-found" || st.NeedDaemonReload {
		t.Fatalf("missing unit: %+v", st)
	}
	if err := f.Start(ctx, "a.service"); err == nil {
		t.Fatal("starting a unit with no file must fail")
	}
	os.WriteFile(filepath.Join(dir, "a.service"), []byte("[Service]\n"), 0o644)
	if st, _ = f.Status(ctx, "a.service"); st.LoadState != "not-found" || !st.NeedDaemonReload {
		t.Fatalf("new file before reload: %+v", st)
	}
	f.Reload(ctx)
	if st, _ = f.Status(ctx, "a.service"); st.LoadState != "loaded" || st.NeedDaemonReload || st.UnitFileState != "disabled" {
		t.Fatalf("after reload: %+v", st)
	}
	os.WriteFile(filepath.Join(dir, "a.service"), []byte("[Service]\nX=1\n"), 0o644)
	if st, _ = f.Status(ctx, "a.service"); !st.NeedDaemonReload {
		t.Fatalf("changed file: %+v", st)
	}
	f.Reload(ctx)
	if err := f.Start(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	ch, _ := f.Enable(ctx, []string{"a.service"})
	ch2, _ := f.Enable(ctx, []string{"a.service"})
	if len(ch) != 1 || len(ch2) != 0 {
		t.Fatalf("enable changes %v then %v", ch, ch2)
	}
	st, _ = f.Status(ctx, "a.service")
	if !st.Running() || !st.Enabled() {
		t.Fatalf("%+v", st)
	}
	want := []string{"start a.service", "reload", "reload", "start a.service", "enable a.service", "enable a.service"}
	if !reflect.DeepEqual(f.Calls, want) {
		t.Fatalf("calls %q", f.Calls)
	}
}

func TestFakeFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.service"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.service"), []byte("x"), 0o644)
	f := NewFake(dir)
	f.StartResult["a.service"] = "failed"
	f.DiesAfterStart["b.service"] = true
	var je *JobError
	if err := f.Start(ctx, "a.service"); !errors.As(err, &je) || je.Result != "failed" {
		t.Fatalf("err %v", err)
	}
	if err := f.Start(ctx, "b.service"); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Status(ctx, "b.service"); st.ActiveState != "failed" || st.Running() {
		t.Fatalf("%+v", st)
	}
	f.Err["reload"] = errors.New("boom")
	if err := f.Reload(ctx); err == nil {
		t.Fatal("injected error lost")
	}
}

func TestJobErrorMessage(t *testing.T) {
	e := &JobError{Op: "start", Unit: "w-green.service", Result: "timeout"}
	if e.Error() != `start job for w-green.service finished with result "timeout"` {
		t.Fatal(e.Error())
	}
}

type fakeConn struct {
	id     int
	closed bool
}

func TestRetryClosedReconnectsOnce(t *testing.T) {
	var dialled []*fakeConn
	get := func() (*fakeConn, error) {
		c := &fakeConn{id: len(dialled) + 1}
		dialled = append(dialled, c)
		return c, nil
	}
	drop := func(c *fakeConn) { c.closed = true }
	isClosed := func(c *fakeConn, err error) bool { return errors.Is(err, errClosedForTest) }

	// The first connection died under us: one reconnect, then success.
	var used []int
	err := retryClosed(get, drop, isClosed, func(c *fakeConn) error {
		used = append(used, c.id)
		if c.id == 1 {
			return errClosedForTest
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(used, []int{1, 2}) || !dialled[0].closed || dialled[1].closed {
		t.Fatalf("err %v used %v", err, used)
	}

	// Closed twice in a row: give up after one retry.
	dialled, used = nil, nil
	err = retryClosed(get, drop, isClosed, func(c *fakeConn) error { used = append(used, c.id); return errClosedForTest })
	if !errors.Is(err, errClosedForTest) || len(used) != 2 {
		t.Fatalf("err %v used %v", err, used)
	}

	// Any other error is not retried.
	dialled, used = nil, nil
	boom := errors.New("org.freedesktop.systemd1.NoSuchUnit")
	err = retryClosed(get, drop, isClosed, func(c *fakeConn) error { used = append(used, c.id); return boom })
	if err != boom || len(used) != 1 {
		t.Fatalf("err %v used %v", err, used)
	}

	// A failed dial is returned.
	dialErr := errors.New("no bus")
	err = retryClosed(func() (*fakeConn, error) { return nil, dialErr }, drop, isClosed, func(*fakeConn) error { return nil })
	if err != dialErr {
		t.Fatal(err)
	}
}

var errClosedForTest = errors.New("dbus: connection closed by user")
