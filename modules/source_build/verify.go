package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// signature is what a successful verification found.
type signature struct {
	Checked     string `json:"checked"` // commit or tag
	Object      string `json:"object"`  // the commit id or tag name verified
	Fingerprint string `json:"fingerprint"`
	Signer      string `json:"signer"`
	Keyring     string `json:"keyring"`
}

// ErrSignature: the commit or tag is unsigned, signed by a key outside the
// keyring, or the signature is bad, expired or revoked.
var ErrSignature = errors.New("signature check failed")

// verifySignature checks the signature of the commit or of the tag with git
// verify-commit / verify-tag against keyring: a GNUPGHOME directory, or a
// file of public keys imported into a throwaway GNUPGHOME. Every key in the
// keyring is trusted; nothing else is.
func verifySignature(ctx context.Context, g *git, dest, what string, r resolved, keyring string) (*signature, error) {
	if _, err := exec.LookPath("gpg"); err != nil {
		return nil, fmt.Errorf("%w: verify_signature needs gpg on the build host: %w", ErrSignature, err)
	}
	st, err := os.Stat(keyring)
	if err != nil {
		return nil, fmt.Errorf("%w: keyring: %w", ErrSignature, err)
	}
	home := keyring
	if !st.IsDir() {
		tmp, err := os.MkdirTemp("", "source_build-gnupg-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		imp := exec.CommandContext(ctx, "gpg", "--batch", "--quiet", "--no-autostart", "--import", "--", keyring)
		imp.Env = append(os.Environ(), "GNUPGHOME="+tmp)
		if out, err := imp.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%w: importing keyring %s: %w: %s", ErrSignature, keyring, err, strings.TrimSpace(string(out)))
		}
		home = tmp
	}
	vg := *g
	vg.env = append(append([]string(nil), g.env...), "GNUPGHOME="+home)
	var args []string
	object := r.Commit
	switch what {
	case "tag":
		if r.Kind != kindTag {
			return nil, fmt.Errorf("%w: verify_signature: tag, but version resolves to a %s, not a tag", ErrSignature, r.Kind)
		}
		if r.Object == r.Commit {
			return nil, fmt.Errorf("%w: %s is a lightweight tag, which cannot carry a signature", ErrSignature, r.Ref)
		}
		object = strings.TrimPrefix(r.Ref, "refs/tags/")
		args = []string{"verify-tag", "--raw", r.Object}
	default:
		args = []string{"verify-commit", "--raw", r.Commit}
	}
	_, status, err := vg.runBoth(ctx, dest, args...)
	sig := parseGPGStatus(status)
	if err != nil || sig.Fingerprint == "" {
		return nil, fmt.Errorf("%w: %s %s: %s", ErrSignature, what, object, explainGPGStatus(status))
	}
	sig.Checked, sig.Object, sig.Keyring = what, object, keyring
	return &sig, nil
}

// parseGPGStatus reads gpg's --status-fd lines that git --raw prints.
func parseGPGStatus(status string) signature {
	var s signature
	good := false
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "[GNUPG:] "))
		if len(f) == 0 || !strings.HasPrefix(line, "[GNUPG:] ") {
			continue
		}
		switch f[0] {
		case "GOODSIG":
			good = true
			if len(f) > 2 {
				s.Signer = strings.Join(f[2:], " ")
			}
		case "VALIDSIG":
			if len(f) > 1 {
				s.Fingerprint = f[1]
			}
		case "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY":
			return signature{}
		}
	}
	if !good {
		return signature{}
	}
	return s
}

// explainGPGStatus turns gpg's status lines into the reason a check failed.
func explainGPGStatus(status string) string {
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(strings.TrimPrefix(line, "[GNUPG:] "))
		if len(f) == 0 || !strings.HasPrefix(line, "[GNUPG:] ") {
			continue
		}
		key := ""
		if len(f) > 1 {
			key = f[1]
		}
		switch f[0] {
		case "NO_PUBKEY":
			return "signed by key " + key + ", which is not in the keyring (untrusted)"
		case "BADSIG":
			return "bad signature by key " + key + " (the signed content was altered)"
		case "EXPKEYSIG":
			return "signed by key " + key + ", which has expired"
		case "REVKEYSIG":
			return "signed by key " + key + ", which is revoked"
		case "EXPSIG":
			return "the signature has expired"
		}
	}
	for _, line := range strings.Split(status, "\n") {
		if strings.Contains(line, "[GNUPG:] ERRSIG") {
			return "the signature could not be checked: " + strings.TrimSpace(line)
		}
	}
	if strings.TrimSpace(status) == "" || strings.Contains(status, "no signature found") {
		return "not signed"
	}
	return "no good signature: " + strings.TrimSpace(lastLines(status, 3))
}
