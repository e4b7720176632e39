package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gpgHome makes a GnuPG home with one signing key for uid and returns the
// home, the key's fingerprint and a file holding its exported public key.
// The gpg-agent the key generation starts is stopped at cleanup.
func gpgHome(t *testing.T, uid string) (home, fpr, pubFile string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatal("gpg is not installed: Debian package gpg (tests/setup.sh check installs it)")
	}
	// gpg only recommends it, and cannot make a key without it.
	if _, err := exec.LookPath("gpg-agent"); err != nil {
		t.Fatal("gpg-agent is not installed: Debian package gpg-agent (tests/setup.sh check installs it)")
	}
	// Short path: the agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "sbg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "all")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		kill.Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) string {
		cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return string(out)
	}
	gpg("--quick-generate-key", uid, "ed25519", "sign", "never")
	for _, line := range strings.Split(gpg("--with-colons", "--list-keys", uid), "\n") {
		if strings.HasPrefix(line, "fpr:") {
			fpr = strings.Split(line, ":")[9]
			break
		}
	}
	pubFile = filepath.Join(t.TempDir(), "pub.asc")
	if err := os.WriteFile(pubFile, []byte(gpg("--armor", "--export", fpr)), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, fpr, pubFile
}

// signedMirror adds to m a commit signed by the key in home, tagged with a
// signed tag "signed", and an unsigned annotated tag "unsigned" on it.
func signedMirror(t *testing.T, m *mirror, home, fpr string) {
	t.Helper()
	d := "2026-04-01T10:00:00Z"
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", m.Src, "-c", "user.signingkey=" + fpr, "-c", "gpg.program=gpg"}, args...)...)
		cmd.Env = append(gitEnv(d), "GNUPGHOME="+home)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	edit(t, filepath.Join(m.Src, "main.go"), `"sovereign v2"`, `"sovereign signed"`)
	git("commit", "-q", "-S", "-am", "signed")
	git("tag", "-s", "-m", "signed release", "signed")
	git("tag", "-a", "-m", "unsigned release", "unsigned")
	git("push", "-q", m.Path, "HEAD:refs/heads/main", "refs/tags/signed", "refs/tags/unsigned")
}

func TestSignatureVerification(t *testing.T) {
	t.Parallel()
	home, fpr, pub := gpgHome(t, "Release <release@forge.lan>")
	_, _, otherPub := gpgHome(t, "Stranger <stranger@elsewhere>")
	m := newMirror(t)
	signedMirror(t, m, home, fpr)

	cases := []struct {
		name, version, verify, keyring string
		want                           []string // empty: succeeds
	}{
		{"signed commit, right key file", "signed", "commit", pub, nil},
		{"signed tag, right key file", "signed", "tag", pub, nil},
		{"signed tag, GNUPGHOME directory", "signed", "tag", home, nil},
		{"signed tag, other key", "signed", "tag", otherPub, []string{"signature check failed", "not in the keyring"}},
		{"signed commit, other key", "signed", "commit", otherPub, []string{"signature check failed", "not in the keyring"}},
		{"unsigned tag", "unsigned", "tag", pub, []string{"signature check failed", "tag unsigned", "not signed"}},
		{"unsigned commit", "v1", "commit", pub, []string{"signature check failed", "not signed"}},
		{"branch is not a tag", "main", "tag", pub, []string{"not a tag"}},
		{"missing keyring", "signed", "tag", "/nonexistent/keys.asc", []string{"keyring"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			a := buildArgs(t, m, dir, c.version)
			a["verify_signature"], a["keyring"] = c.verify, c.keyring
			r := runModule(t, a, false)
			if len(c.want) > 0 {
				t.Log(mustFail(t, r, c.want...).str("msg"))
				if _, err := os.Stat(filepath.Join(dir, "store")); err == nil && len(storeKeys(t, filepath.Join(dir, "store"))) > 0 {
					t.Error("an unverified version was built")
				}
				if _, err := os.Stat(filepath.Join(dir, "src", "main.go")); err == nil {
					t.Error("an unverified version was checked out")
				}
				return
			}
			mustSucceed(t, r)
			sig, _ := r["signature"].(map[string]any)
			if sig == nil || sig["fingerprint"] != fpr || sig["checked"] != c.verify || !strings.Contains(sig["signer"].(string), "release@forge.lan") {
				t.Fatalf("signature: %v", r["signature"])
			}
			man, _ := r["manifest"].(map[string]any)
			if s, _ := man["signature"].(map[string]any); s == nil || s["fingerprint"] != fpr {
				t.Errorf("manifest signature: %v", man["signature"])
			}
			// Check mode verifies too once the objects are there.
			c := mustSucceed(t, runModule(t, a, true))
			if c["signature"] == nil {
				t.Error("check mode did not verify")
			}
		})
	}
}
