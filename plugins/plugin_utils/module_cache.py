# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""The module cache on each target: the pure part (settings and shell commands).

A module binary is uploaded to a host once, into a directory of the user the
module runs as (after become), under a name that is its sha256; later tasks
send only their arguments, on stdin, and run the cached file in one round
trip. The commands below are the whole remote side:

- ``hit_command``: runs the cached binary when it is there, is a regular file
  owned by the user running it, neither it nor its directory is writable by
  group or others, and its content hashes to the expected sha256. Otherwise
  it prints MISS (after checking that the directory can hold and execute the
  binary) or UNUSABLE and the reason.
- ``install_command``: reads the arguments line, then the binary, from stdin;
  writes the binary beside its final name, checks its sha256, renames it in
  place (atomic: concurrent forks each write their own file), prunes all but
  the newest binaries, and runs it.

The cache names a binary by its sha256: ``binary_sha256`` takes it from
bin/SHA256SUMS (written by make build) while the binary still has the size
and mtime recorded there, and hashes the file otherwise.

Nothing here imports ansible, so tests/unit_py runs these commands for real
against scratch directories.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import shlex

# The variable that configures the cache: a directory (absolute or ~/...) or
# false to turn the cache off.
SETTING = "chezlepro_sovereign_module_cache"
DEFAULT_DIR = "~/.ansible/chezlepro_sovereign/modules"
# Binaries kept per user and host: three modules of two collection versions
# side by side, with room to spare (about 7 MB each).
KEEP = 8

MISS = "CHEZLEPRO_SOVEREIGN_CACHE_MISS"
UNUSABLE = "CHEZLEPRO_SOVEREIGN_CACHE_UNUSABLE"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_OFF = ("false", "no", "off", "0", "")


# Beside the binaries: "SHA256 SIZE MTIME_NS NAME" per binary (make build).
SUMS = "SHA256SUMS"


def binary_sha256(path):
    """The sha256 of the binary at path, hex.

    From SUMS beside it when its line for the binary records the binary's
    current size and mtime (hashing 7 MB costs ~20 ms a task); otherwise (no
    sums file, no line for it, a binary rebuilt or copied since) by hashing
    the file, silently: a stale sums file must never name a binary wrongly,
    since the target runs whatever its cache holds under that name.
    """
    st = os.stat(path)
    entry = _sums_entry(os.path.join(os.path.dirname(path), SUMS), os.path.basename(path))
    if entry is not None and entry[1:] == (st.st_size, st.st_mtime_ns):
        return entry[0]
    # Not hashlib.file_digest (3.11): ansible-core 2.14 controllers run 3.9 too.
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sums_entry(sums, name):
    """(sha256, size, mtime_ns) of name in the sums file; None when absent or unreadable."""
    try:
        with open(sums, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, ValueError):
        return None
    for line in lines:
        fields = line.split()
        if len(fields) == 4 and fields[3] == name and _SHA256.match(fields[0]) and fields[1].isdigit() and fields[2].isdigit():
            return fields[0], int(fields[1]), int(fields[2])
    return None


class SettingError(ValueError):
    """The cache setting is not a directory nor false; the message says how."""


def cache_dir(value):
    """The cache directory the setting names, or None when the cache is off."""
    if value is None:
        return DEFAULT_DIR
    if value is False:
        return None
    if not isinstance(value, str):
        raise SettingError("%s must be a directory (absolute or ~/...) or false, got %r" % (SETTING, value))
    if value.strip().lower() in _OFF:
        return None
    if not (value.startswith("/") or value == "~" or value.startswith("~/")):
        raise SettingError("%s must be an absolute directory or start with ~/, got %r" % (SETTING, value))
    if "\n" in value or "\0" in value:
        raise SettingError("%s must not contain a newline or NUL: %r" % (SETTING, value))
    return value


def _dir_word(directory):
    """A shell word for directory, with ~ expanded by the remote user's own $HOME."""
    if directory == "~":
        return '"$HOME"'
    if directory.startswith("~/"):
        return '"$HOME"/' + shlex.quote(directory[2:])
    return shlex.quote(directory)


def _exports(env):
    """The task's environment (ansible's VAR=value words) exported before exec.

    Not through env(1): on a binary of another architecture, execvp() falls
    back to running it with /bin/sh; the shell's own exec reports "Exec format
    error", which the dispatch acts on.
    """
    return "export %s; " % env.strip() if env.strip() else ""


def _check(sha256):
    if not _SHA256.match(sha256):
        raise ValueError("not a sha256: %r" % sha256)


# Prints what makes $1... unsafe to execute from: a symlink, an owner other
# than the user running this, or a group/other write bit. Empty when safe.
# find runs from / : under become, the working directory may be one the user
# cannot read, which find reports (and a report means unsafe here).
_UNSAFE = '(cd / && find "$@" -maxdepth 0 \\( -type l -o ! -user "$(id -u)" -o -perm /022 \\) -print 2>&1)'


# Both commands start so: $d the cache, $f the binary's place in it, and
# umask 077 for the cache's own files only, the login's kept in $m for the
# module (what it creates, a service's binary say, must stay readable to
# others, as with ansible's plain upload).
_PROLOGUE = "m=\"$(umask)\"; umask 077; d=%(d)s; f=\"$d\"/%(sha)s; "


def hit_command(directory, sha256, size, env=""):
    """Run the cached binary with the arguments on stdin, or say MISS/UNUSABLE."""
    _check(sha256)
    d = _dir_word(directory)
    kib = size // 1024 + 1
    return (
        _PROLOGUE + "unsafe() { %(unsafe)s; }; "
        "if [ -z \"$(unsafe \"$d\" \"$f\")\" ] && [ \"$(sha256sum <\"$f\" 2>/dev/null)\" = '%(sha)s  -' ]; "
        # Not exec: a module killed by a signal must end this shell with
        # 128+signal, as ansible's own "&& sleep 0" keeps it; an exec'd
        # module's signal makes ssh exit 255, which ansible takes for an
        # unreachable host.
        "then umask \"$m\"; %(env)s\"$f\" /dev/stdin; exit $?; fi; "
        "u=\"$(id -un)\"; "
        "no() { echo \"%(unusable)s $*\"; exit 0; }; "
        "e=\"$(mkdir -p \"$d\" 2>&1)\" || no \"cannot create $d as $u: $e\"; "
        "[ -z \"$(unsafe \"$d\")\" ] || no \"$d is not a directory of $u's alone (a symlink, another owner, "
        "or writable by group or others)\"; "
        "p=\"$d/.probe.$$\"; e=\"$( (printf '#!/bin/sh\\n' >\"$p\" && chmod 700 \"$p\") 2>&1)\" "
        "|| { rm -f \"$p\"; no \"cannot write in $d as $u: $e\"; }; "
        "\"$p\" >/dev/null 2>&1; r=$?; rm -f \"$p\"; "
        "[ $r -eq 0 ] || no \"cannot execute files in $d (mounted noexec?)\"; "
        "k=\"$(df -Pk \"$d\" | awk 'NR==2 {print $4}')\"; "
        "[ \"${k:-0}\" -gt %(kib)d ] || no \"not enough free space in $d: ${k:-0} KiB free, %(kib)d KiB needed\"; "
        "echo %(miss)s"
    ) % {
        "d": d,
        "sha": sha256,
        "unsafe": _UNSAFE,
        "env": _exports(env),
        "unusable": UNUSABLE,
        "miss": MISS,
        "kib": kib,
    }


def install_command(directory, sha256, keep=KEEP, env=""):
    """Read the arguments line then the binary from stdin; cache the binary; run it."""
    _check(sha256)
    if keep < 1:
        raise ValueError("keep must be at least 1, got %r" % keep)
    return (
        _PROLOGUE + "t=; "
        "no() { cat >/dev/null; [ -z \"$t\" ] || rm -f \"$t\"; echo \"%(unusable)s $*\"; exit 0; }; "
        "IFS= read -r a || no 'no arguments line on stdin'; "
        "t=\"$(mktemp \"$d/.part.XXXXXX\" 2>&1)\" || { e=\"$t\"; t=; no \"cannot write in $d: $e\"; }; "
        "e=\"$(cat 2>&1 >\"$t\")\" || no \"cannot write the binary into $d (disk full?): $e\"; "
        "[ \"$(sha256sum <\"$t\")\" = '%(sha)s  -' ] || no 'the binary arrived damaged (its sha256 differs)'; "
        "e=\"$( (chmod 500 \"$t\" && mv -f \"$t\" \"$f\") 2>&1)\" || no \"cannot put the binary in place in $d: $e\"; "
        "t=; "
        # The newest binaries stay; a pruned one is uploaded again when needed.
        "ls -t \"$d\" | grep -E '^[0-9a-f]{64}$' | tail -n +%(first_pruned)d | "
        "while IFS= read -r o; do rm -f \"$d/$o\"; done; "
        "umask \"$m\"; %(env)sprintf '%%s\\n' \"$a\" | \"$f\" /dev/stdin; exit $?"
    ) % {
        "d": _dir_word(directory),
        "sha": sha256,
        "unusable": UNUSABLE,
        "env": _exports(env),
        "first_pruned": keep + 1,
    }


def marker(stdout):
    """(MISS, "") or (UNUSABLE, reason) when stdout is a cache marker, else (None, "")."""
    text = stdout.strip()
    if text == MISS:
        return MISS, ""
    if text.startswith(UNUSABLE + " "):
        return UNUSABLE, text[len(UNUSABLE) + 1:].strip()
    return None, ""
