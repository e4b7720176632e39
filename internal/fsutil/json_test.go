package fsutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJSONRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	var got map[string]int
	found, err := ReadJSON(p, &got)
	require.NoError(t, err)
	assert.False(t, found, "an absent file is not an error")
	assert.Nil(t, got, "and leaves v alone")

	require.NoError(t, WriteJSON(p, map[string]int{"b": 2, "a": 1}, 0o600))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"a\": 1,\n  \"b\": 2\n}\n", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	found, err = ReadJSON(p, &got)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, map[string]int{"a": 1, "b": 2}, got)
}

func TestReadJSONNamesABrokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tags.json")
	require.NoError(t, os.WriteFile(p, []byte("{\"a\": "), 0o600))
	var v map[string]any
	found, err := ReadJSON(p, &v)
	assert.True(t, found)
	require.Error(t, err)
	assert.Equal(t, p+" is not valid JSON: unexpected end of JSON input", err.Error())

	require.NoError(t, os.Chmod(p, 0))
	if os.Geteuid() != 0 {
		_, err = ReadJSON(p, &v)
		assert.ErrorContains(t, err, "read "+p+": ")
	}
}

func TestWriteJSONRefusesWhatIsNotJSON(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.json")
	err := WriteJSON(p, map[string]any{"c": make(chan int)}, 0o644)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "encode "+p+": json: unsupported type"), err.Error())
	_, statErr := os.Stat(p)
	assert.True(t, os.IsNotExist(statErr), "nothing written")
}

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bin")
	require.NoError(t, os.WriteFile(p, []byte("abc"), 0o644))
	sum, n, err := HashFile(p)
	require.NoError(t, err)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sum)
	assert.Equal(t, int64(3), n)
	_, _, err = HashFile(p + ".missing")
	assert.ErrorIs(t, err, os.ErrNotExist)
}
