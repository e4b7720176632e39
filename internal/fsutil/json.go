package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReadJSON decodes the JSON file at path into v. found is false, and v left
// alone, when the file does not exist; a file that does not parse is an
// error naming it, since the state files it reads must never be guessed.
func ReadJSON(path string, v any) (found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%s is not valid JSON: %w", path, err)
	}
	return true, nil
}

// WriteJSON replaces path with v as indented JSON and a final newline,
// atomically (WriteFileAtomic), with mode exactly.
func WriteJSON(path string, v any, mode os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), mode)
}

// hashBufSize is the read size for hashing: large enough that syscalls cost
// nothing next to SHA-256, small enough to stay in L2 cache.
const hashBufSize = 1 << 20

// HashReader returns the hex sha256 of what r holds and its size in bytes.
func HashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	// Only Read: an *os.File's WriterTo would bypass the buffer size.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, make([]byte, hashBufSize))
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// HashFile returns the hex sha256 and the size of the file at path.
func HashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	sum, n, err := HashReader(f)
	if err != nil {
		return "", n, fmt.Errorf("read %s: %w", path, err)
	}
	return sum, n, nil
}
