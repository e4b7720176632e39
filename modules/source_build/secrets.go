package main

import (
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Secrets: a repo URL's userinfo (user:password@) and the values of env.
// Neither is written to a file or returned: the URL is used without its
// userinfo everywhere (request.Repo, resolveOptions) and git gets the
// credential through its environment only; env values are recorded as
// redactedValue, and the recipe hash is computed over the real values so
// that changing one still rebuilds.

const redactedValue = "(redacted)"

// redactURL strips the userinfo from a URL, except an ssh URL's user name,
// which is a login and not a credential (ssh authenticates with keys; the
// "git@" of ssh://git@forge.lan/x.git is in nearly every forge's URLs, and
// masking it would mask every "git" in the output). Anything else comes
// back as it is (host:path, a local path).
func redactURL(repo string) string {
	u, err := url.Parse(repo)
	if err != nil || u.User == nil || u.Scheme == "" {
		return repo
	}
	if sshSchemes[strings.ToLower(u.Scheme)] {
		if _, hasPassword := u.User.Password(); !hasPassword {
			return repo
		}
		u.User = url.User(u.User.Username())
		return u.String()
	}
	u.User = nil
	return u.String()
}

// sshSchemes are the URL schemes git reaches over ssh.
var sshSchemes = map[string]bool{"ssh": true, "git+ssh": true, "ssh+git": true}

// splitCredential moves the userinfo out of req.Repo into req.repoWithAuth.
func (req *request) splitCredential() {
	if r := redactURL(req.Repo); r != req.Repo {
		req.repoWithAuth, req.Repo = req.Repo, r
	}
}

// credentialSecrets are the strings to mask in the module's output: the URL
// as given, its userinfo, and the password as written and decoded.
func credentialSecrets(repoWithAuth string) []string {
	if redactURL(repoWithAuth) == repoWithAuth {
		return nil // no userinfo
	}
	out := []string{repoWithAuth}
	if _, rest, ok := strings.Cut(repoWithAuth, "://"); ok {
		// The userinfo ends at the authority's last @, as net/url reads it
		// (a raw @ in a password: https://u:p@ss@forge/x).
		authority := rest
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			authority = rest[:i]
		}
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			userinfo := authority[:i]
			out = append(out, userinfo)
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				out = append(out, pw)
				if dec, err := url.PathUnescape(pw); err == nil {
					out = append(out, dec)
				}
			}
		}
	}
	return out
}

// credentialEnv hands git the credential without writing it anywhere (not
// in .git/config, not in argv, which any user can read in ps): a config
// entry in the environment rewriting the URL without userinfo into the one
// with it. Entries already in the environment (GIT_CONFIG_COUNT) are kept.
func credentialEnv(repo, repoWithAuth string) []string {
	if repoWithAuth == "" {
		return nil
	}
	n, _ := strconv.Atoi(os.Getenv("GIT_CONFIG_COUNT"))
	if n < 0 {
		n = 0
	}
	i := strconv.Itoa(n)
	return []string{
		"GIT_CONFIG_KEY_" + i + "=url." + repoWithAuth + ".insteadOf",
		"GIT_CONFIG_VALUE_" + i + "=" + repo,
		"GIT_CONFIG_COUNT=" + strconv.Itoa(n+1),
	}
}

// redacted is the recipe as recorded and compared in words: env keys with
// their values redacted. Its hash is not the recipe's.
func (r recipe) redacted() recipe {
	r.Env = redactEnv(r.Env, r.Env)
	return r
}

// redactEnv returns env with the values of the keys the user set redacted.
func redactEnv(env, user map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		if _, ok := user[k]; ok {
			v = redactedValue
		}
		out[k] = v
	}
	return out
}
