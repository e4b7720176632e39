package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFileAtomicReplacesContentAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "unit.service")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o600))

	require.NoError(t, WriteFileAtomic(p, []byte("new"), 0o644))

	got, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "mode is exact, not filtered by the umask")
	assertNoTemps(t, dir)
}

func TestWriteAtomicFailureKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	boom := errors.New("source vanished")

	err := WriteAtomic(p, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return boom
	})

	require.ErrorIs(t, err, boom)
	got, _ := os.ReadFile(p)
	assert.Equal(t, "old", string(got))
	assertNoTemps(t, dir)
}

func TestWriteFileAtomicMissingDirectory(t *testing.T) {
	err := WriteFileAtomic(filepath.Join(t.TempDir(), "nope", "f"), []byte("x"), 0o644)
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "nope")
}

func TestSymlinkAtomicSwapsExistingLink(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "blue")
	require.NoError(t, SymlinkAtomic("releases/v1", link))
	require.NoError(t, SymlinkAtomic("releases/v2", link))

	target, err := os.Readlink(link)
	require.NoError(t, err)
	assert.Equal(t, "releases/v2", target)
	assertNoTemps(t, dir)
}

func TestSymlinkAtomicRefusesToReplaceDirectory(t *testing.T) {
	dir := t.TempDir()
	slot := filepath.Join(dir, "green")
	require.NoError(t, os.Mkdir(slot, 0o755))
	err := SymlinkAtomic("releases/v1", slot)
	require.Error(t, err, "rename over a directory must fail, never delete it")
	st, err := os.Lstat(slot)
	require.NoError(t, err)
	assert.True(t, st.IsDir())
	assertNoTemps(t, dir)
}

func TestTempNamesAreUniqueAndHidden(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		n := TempName("/opt/x/app")
		assert.True(t, strings.HasPrefix(filepath.Base(n), ".app.tmp-"))
		assert.False(t, seen[n], "duplicate temp name %s", n)
		seen[n] = true
	}
}

func TestCleanTempsRemovesOnlyLeftoversOfThatPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "app")
	leftover := TempName(p)
	other := TempName(filepath.Join(dir, "other"))
	require.NoError(t, os.WriteFile(leftover, nil, 0o644))
	require.NoError(t, os.WriteFile(other, nil, 0o644))

	removed, err := CleanTemps(p)
	require.NoError(t, err)
	assert.Equal(t, []string{leftover}, removed)
	_, err = os.Stat(other)
	assert.NoError(t, err)
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp-", "temporary file left behind")
	}
}
