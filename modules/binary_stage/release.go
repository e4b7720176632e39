package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// metaName is the record each release directory holds about itself.
const metaName = ".release.json"

// releaseMeta is RELEASE/.release.json. Stat lets a later run trust the
// binary without hashing it again while the file's size, mtime and ctime
// are those recorded right after it was verified (ctime cannot be set by a
// program: any write, chmod, chown or xattr change moves it).
type releaseMeta struct {
	Name     string  `json:"name"`
	Version  string  `json:"version"`
	Commit   string  `json:"commit,omitempty"`
	SHA256   string  `json:"sha256"`
	Size     int64   `json:"size"`
	Binary   string  `json:"binary"`
	Source   string  `json:"source"`
	StagedAt string  `json:"staged_at"`
	Stat     fileSig `json:"stat"`
}

type fileSig struct {
	Size    int64 `json:"size"`
	MtimeNs int64 `json:"mtime_ns"`
	CtimeNs int64 `json:"ctime_ns"`
}

func sigOf(fi os.FileInfo) fileSig {
	st := fi.Sys().(*syscall.Stat_t)
	return fileSig{Size: fi.Size(), MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano()}
}

// readMeta reads dir's record; a missing one is an error wrapping
// fs.ErrNotExist.
func readMeta(dir string) (*releaseMeta, error) {
	p := filepath.Join(dir, metaName)
	var m releaseMeta
	found, err := fsutil.ReadJSON(p, &m)
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return &m, nil
}

// writeMeta records the release and the current stat signature of its
// binary (call it after every change to the binary or its attributes).
func writeMeta(dir string, s *spec, stagedAt string) error {
	fi, err := os.Lstat(filepath.Join(dir, s.Binary))
	if err != nil {
		return fmt.Errorf("stat staged binary: %w", err)
	}
	m := releaseMeta{
		Name: s.Name, Version: s.Version, Commit: s.Commit, SHA256: s.SHA256, Size: fi.Size(),
		Binary: s.Binary, Source: s.source(), StagedAt: stagedAt, Stat: sigOf(fi),
	}
	// 0600, as the history: the source URL's query may carry a token.
	return fsutil.WriteJSON(filepath.Join(dir, metaName), m, 0o600)
}
