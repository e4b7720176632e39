package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/chezlepro/sovereign/internal/fsutil"
)

// The store keeps one directory per repository and, in it, one directory per
// build, keyed by commit and recipe:
//
//	STORE/<name>-<repo hash>/
//	    <commit[:12]>-<recipe hash[:12]>/   manifest.json, build.log, the artifact(s)
//	    tags.json                           the commit each tag was first built from
//	    failed/<time>-<key>.log             logs of failed builds
//	    .lock                               held while the directory is changed
//
// A build is made in a temporary directory beside its key and renamed into
// place only once it succeeded, so a failed build never replaces anything.
type store struct {
	Root    string
	RepoDir string
}

func openStore(root, name, repo string) store {
	sum := sha256.Sum256([]byte(strings.TrimRight(repo, "/")))
	return store{Root: root, RepoDir: filepath.Join(root, name+"-"+hex.EncodeToString(sum[:])[:8])}
}

func storeKey(commit, recipeHash string) string { return shortID(commit) + "-" + recipeHash[:12] }

func (s store) entryDir(key string) string { return filepath.Join(s.RepoDir, key) }
func (s store) lockPath() string           { return filepath.Join(s.RepoDir, ".lock") }
func (s store) failedDir() string          { return filepath.Join(s.RepoDir, "failed") }
func (s store) tagsPath() string           { return filepath.Join(s.RepoDir, "tags.json") }

// manifest is the record of one build, written as manifest.json beside the
// artifacts. binary_stage reads it: name, version, commit, sha256, size and
// artifact (absolute path) are its contract.
type manifest struct {
	Schema          int               `json:"schema"`
	Name            string            `json:"name"`
	Repo            string            `json:"repo"`
	Version         string            `json:"version"`
	Ref             string            `json:"ref"`
	RefType         string            `json:"ref_type"`
	Commit          string            `json:"commit"`
	CommitTime      string            `json:"commit_time"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	GoVersion       string            `json:"go_version"`
	GoBinary        string            `json:"go_binary"`
	Recipe          recipe            `json:"recipe"`
	RecipeHash      string            `json:"recipe_hash"`
	Key             string            `json:"key"`
	Command         []string          `json:"command"`
	Workdir         string            `json:"workdir"`
	Env             map[string]string `json:"env"`
	Isolation       string            `json:"isolation"`
	Sha256          string            `json:"sha256"`
	Size            int64             `json:"size"`
	Artifact        string            `json:"artifact"`
	Artifacts       []artifact        `json:"artifacts"`
	BuildTime       string            `json:"build_time"`
	BuildDurationMS int64             `json:"build_duration_ms"`
	Modules         []goModule        `json:"modules"`
	MainModule      *goModule         `json:"main_module"`
	BuildSettings   map[string]string `json:"build_settings"`
	Log             string            `json:"log"`
	Signature       *signature        `json:"signature"`
	Host            string            `json:"host"`
}

const manifestSchema = 1

// artifact is one file a build produced, as kept in the store.
type artifact struct {
	Name      string     `json:"name"`
	Path      string     `json:"path"`   // absolute, in the store
	Source    string     `json:"source"` // where the build wrote it
	Sha256    string     `json:"sha256"`
	Size      int64      `json:"size"`
	Mode      string     `json:"mode"`
	GoVersion string     `json:"go_version,omitempty"` // what `go version -m` reports for a Go binary
	Modules   []goModule `json:"modules,omitempty"`
}

// goModule is one module line of `go version -m`.
type goModule struct {
	Path    string    `json:"path"`
	Version string    `json:"version"`
	Sum     string    `json:"sum,omitempty"`
	Replace *goModule `json:"replace,omitempty"`
}

// readBuildInfo returns what `go version -m` prints for a Go binary: the
// toolchain, the main module, the dependency modules and the build settings.
// ok is false for a file that is not a Go binary.
func readBuildInfo(path string) (goVersion string, main *goModule, deps []goModule, settings map[string]string, ok bool) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", nil, nil, nil, false
	}
	mm := fromDebug(&bi.Main)
	deps = []goModule{}
	for _, d := range bi.Deps {
		deps = append(deps, fromDebug(d))
	}
	settings = map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	return bi.GoVersion, &mm, deps, settings, true
}

func fromDebug(d *debug.Module) goModule {
	m := goModule{Path: d.Path, Version: d.Version, Sum: d.Sum}
	if d.Replace != nil {
		r := fromDebug(d.Replace)
		m.Replace = &r
	}
	return m
}

// readManifest reads a build's manifest; the error wraps fs.ErrNotExist
// when there is none.
func readManifest(dir string) (*manifest, error) {
	path := filepath.Join(dir, "manifest.json")
	var m manifest
	found, err := fsutil.ReadJSON(path, &m)
	if err == nil && !found {
		err = fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// entryProblem says what is wrong with a stored build, "" when it is whole:
// the manifest must match the key and every artifact be there at its size.
func entryProblem(m *manifest, commit, recipeHash string) string {
	if m.Commit != commit || m.RecipeHash != recipeHash {
		return fmt.Sprintf("manifest records commit %s recipe %s, not this key", shortID(m.Commit), shortID(m.RecipeHash))
	}
	if len(m.Artifacts) == 0 {
		return "manifest lists no artifact"
	}
	for _, a := range m.Artifacts {
		st, err := os.Stat(a.Path)
		switch {
		case err != nil:
			return "artifact missing: " + a.Path
		case !st.Mode().IsRegular():
			return "artifact is not a regular file: " + a.Path
		case st.Size() != a.Size:
			return fmt.Sprintf("artifact %s is %d bytes, the manifest says %d", a.Path, st.Size(), a.Size)
		}
	}
	return ""
}

// entries lists the builds of this repository, newest first.
func (s store) entries() ([]*manifest, error) {
	des, err := os.ReadDir(s.RepoDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*manifest
	for _, de := range des {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") || de.Name() == "failed" {
			continue
		}
		m, err := readManifest(filepath.Join(s.RepoDir, de.Name()))
		if err != nil {
			continue // half-deleted or foreign: not a build
		}
		m.Key = de.Name()
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].BuildTime != out[j].BuildTime {
			return out[i].BuildTime > out[j].BuildTime
		}
		return out[i].Key > out[j].Key
	})
	return out, nil
}

// tagRecord is the commit a tag pointed to when it was first built.
type tagRecord struct {
	Commit   string `json:"commit"`
	Object   string `json:"object"`
	Recorded string `json:"recorded"`
	Key      string `json:"key"`
}

func (s store) readTags() (map[string]tagRecord, error) {
	tags := map[string]tagRecord{}
	if _, err := fsutil.ReadJSON(s.tagsPath(), &tags); err != nil {
		return nil, err
	}
	return tags, nil
}

func (s store) writeTags(tags map[string]tagRecord) error {
	return fsutil.WriteJSON(s.tagsPath(), tags, 0o644)
}

// pruneSelect picks the builds to remove to keep the keep newest, never the
// one named current.
func pruneSelect(entries []*manifest, keep int, current string) []string {
	var drop []string
	kept := 1 // current
	for _, m := range entries {
		if m.Key == current {
			continue
		}
		if kept < keep {
			kept++
			continue
		}
		drop = append(drop, m.Key)
	}
	return drop
}

// prune removes old builds and old failure logs beyond keep.
func (s store) prune(keep int, current string) ([]string, error) {
	entries, err := s.entries()
	if err != nil {
		return nil, err
	}
	drop := pruneSelect(entries, keep, current)
	for _, k := range drop {
		if err := os.RemoveAll(s.entryDir(k)); err != nil {
			return drop, fmt.Errorf("prune %s: %w", s.entryDir(k), err)
		}
	}
	s.pruneFailed(keep)
	return drop, nil
}

// pruneFailed keeps the keep newest failure logs.
func (s store) pruneFailed(keep int) {
	logs, err := filepath.Glob(filepath.Join(s.failedDir(), "*.log"))
	if err != nil || len(logs) <= keep {
		return
	}
	sort.Strings(logs) // names start with the UTC time
	for _, l := range logs[:len(logs)-keep] {
		os.Remove(l)
	}
}

// cleanTemps removes temporary build directories left by runs that were
// killed (their process is gone).
func (s store) cleanTemps() {
	des, err := os.ReadDir(s.RepoDir)
	if err != nil {
		return
	}
	for _, de := range des {
		name := de.Name()
		i := strings.Index(name, ".tmp-")
		if !strings.HasPrefix(name, ".") || i < 0 {
			continue
		}
		pidStr, _, _ := strings.Cut(name[i+len(".tmp-"):], "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(s.RepoDir, name))
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// storeFile copies src into the store as dst (atomically, fsynced) and
// returns its sha256 and size.
func storeFile(src, dst string, mode os.FileMode) (string, int64, error) {
	// O_NOFOLLOW: a symlink swapped in after the checks is not followed.
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	if info, err := in.Stat(); err != nil || !info.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", src)
	}
	h := sha256.New()
	var n int64
	err = fsutil.WriteAtomic(dst, mode, func(w io.Writer) error {
		var err error
		n, err = io.Copy(io.MultiWriter(w, h), in)
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
