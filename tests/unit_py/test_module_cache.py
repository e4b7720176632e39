# WTFPL (see LICENSE)
"""The module cache's remote commands, run for real with /bin/sh in scratch directories.

A shell script stands in for a module binary: it prints the arguments file it
is given, so a test sees what ran and with which arguments.
"""

import hashlib
import importlib.util
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location(
    "module_cache", os.path.join(HERE, "..", "..", "plugins", "plugin_utils", "module_cache.py"))
mc = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(mc)

ARGS = '{"name": "x", "_ansible_check_mode": false}'


def fake_binary(tag):
    return ("#!/bin/sh\n# %s\necho ran-%s; cat \"$1\"; echo \"env=$CHZ\"\n" % (tag, tag)).encode()


def rewrite(path, data):
    os.chmod(path, 0o700)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o500)


class CacheCommands(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="chz-cache-")
        self.dir = os.path.join(self.scratch, "home", "cache")

    def tearDown(self):
        subprocess.run(["chmod", "-R", "u+w", self.scratch], check=False)
        shutil.rmtree(self.scratch)

    def sh(self, cmd, stdin):
        p = subprocess.run(["/bin/sh", "-c", cmd], input=stdin, capture_output=True,
                           env={"PATH": os.environ["PATH"], "HOME": os.path.join(self.scratch, "home")}, check=False)
        return p.stdout.decode(), p.stderr.decode()

    def run_task(self, data, env=""):
        """What the action plugin does: try the cache, install on a miss. Returns (stdout, installed)."""
        sha = hashlib.sha256(data).hexdigest()
        out, _unused = self.sh(mc.hit_command(self.dir, sha, len(data), env), (ARGS + "\n").encode())
        kind, reason = mc.marker(out)
        if kind is None:
            return out, False
        self.assertEqual(kind, mc.MISS, reason)
        out, _unused = self.sh(mc.install_command(self.dir, sha, env=env), (ARGS + "\n").encode() + data)
        return out, True

    def path(self, data):
        return os.path.join(self.dir, hashlib.sha256(data).hexdigest())

    def test_first_task_installs_then_the_cache_runs(self):
        data = fake_binary("a")
        out, installed = self.run_task(data)
        self.assertTrue(installed)
        self.assertIn("ran-a", out)
        self.assertIn(ARGS, out)
        out, installed = self.run_task(data)
        self.assertFalse(installed)
        self.assertIn("ran-a", out)
        self.assertIn(ARGS, out)
        st = os.stat(self.path(data))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o500)
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertEqual([n for n in os.listdir(self.dir) if n.startswith(".")], [])

    def test_a_killed_module_ends_the_shell_with_128_plus_the_signal(self):
        # ssh reports a remote command killed by a signal as exit 255, which
        # ansible takes for an unreachable host: the shell must outlive it.
        data = b"#!/bin/sh\necho killed-next\nkill -9 $$\n"
        sha = hashlib.sha256(data).hexdigest()
        env = {"PATH": os.environ["PATH"], "HOME": os.path.join(self.scratch, "home")}

        def run(cmd, stdin):
            return subprocess.run(["/bin/sh", "-c", cmd], input=stdin, capture_output=True, env=env, check=False)

        miss = run(mc.hit_command(self.dir, sha, len(data)), (ARGS + "\n").encode())
        self.assertEqual(mc.marker(miss.stdout.decode())[0], mc.MISS)
        install = run(mc.install_command(self.dir, sha), (ARGS + "\n").encode() + data)
        hit = run(mc.hit_command(self.dir, sha, len(data)), (ARGS + "\n").encode())
        for name, p in (("install", install), ("hit", hit)):
            self.assertIn(b"killed-next", p.stdout, name)
            self.assertEqual(p.returncode, 137, name)

    def test_the_module_runs_with_the_logins_umask(self):
        # 077 is for the cache's files: a module under it would make a
        # service's binary unreadable to the service's user.
        data = b"#!/bin/sh\necho umask=$(umask)\n"
        old = os.umask(0o022)
        try:
            first, installed = self.run_task(data)
            again, cached = self.run_task(data)
        finally:
            os.umask(old)
        self.assertTrue(installed)
        self.assertFalse(cached)
        self.assertIn("umask=0022", first)
        self.assertIn("umask=0022", again)

    def test_environment_reaches_the_binary(self):
        out, _unused = self.run_task(fake_binary("e"), env="CHZ='a b'")
        self.assertIn("env=a b", out)
        out, installed = self.run_task(fake_binary("e"), env="CHZ='a b'")
        self.assertFalse(installed)
        self.assertIn("env=a b", out)

    def test_tampered_files_are_never_run_and_are_replaced(self):
        data = fake_binary("good")
        for name, spoil in [
            ("replaced", lambda p: rewrite(p, fake_binary("evil"))),
            ("truncated", lambda p: rewrite(p, fake_binary("good")[:10])),
            ("world-writable", lambda p: os.chmod(p, 0o777)),
            ("group-writable", lambda p: os.chmod(p, 0o570)),
            ("symlink", lambda p: (os.remove(p), shutil.copy(p + ".bak", p + ".real"), os.symlink(p + ".real", p))),
        ]:
            with self.subTest(name):
                self.run_task(data)
                p = self.path(data)
                shutil.copy(p, p + ".bak")
                spoil(p)
                out, installed = self.run_task(data)
                self.assertTrue(installed, "%s file was run from the cache: %s" % (name, out))
                self.assertIn("ran-good", out)
                self.assertNotIn("evil", out)
                st = os.lstat(p)
                self.assertTrue(stat.S_ISREG(st.st_mode))
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o500)
                for extra in (p + ".bak", p + ".real"):
                    if os.path.exists(extra):
                        os.remove(extra)

    def test_versions_side_by_side_and_pruning(self):
        builds = [fake_binary("v%d" % i) for i in range(mc.KEEP + 3)]
        for i, data in enumerate(builds):
            out, installed = self.run_task(data)
            self.assertTrue(installed)
            # mtime decides what is pruned: make each install distinctly newer.
            os.utime(self.path(data), (1000000 + i, 1000000 + i))
        kept = sorted(os.listdir(self.dir))
        self.assertEqual(kept, sorted(os.path.basename(self.path(d)) for d in builds[-mc.KEEP:]))
        # Two versions alternate without reinstalling each other.
        a, b = builds[-1], builds[-2]
        for data in (a, b, a, b):
            out, installed = self.run_task(data)
            self.assertFalse(installed)

    def unusable(self, data):
        sha = hashlib.sha256(data).hexdigest()
        out, _unused = self.sh(mc.hit_command(self.dir, sha, len(data)), (ARGS + "\n").encode())
        return mc.marker(out)

    def test_a_directory_others_can_write_is_unusable(self):
        self.run_task(fake_binary("x"))
        os.chmod(self.dir, 0o777)
        kind, reason = self.unusable(fake_binary("x"))
        self.assertEqual(kind, mc.UNUSABLE)
        self.assertIn("writable by group or others", reason)

    def test_a_directory_that_cannot_be_created_is_unusable(self):
        os.makedirs(os.path.dirname(self.dir))
        open(self.dir, "w").close()  # a file where the directory should be
        kind, reason = self.unusable(fake_binary("x"))
        self.assertEqual(kind, mc.UNUSABLE)
        self.assertIn("cannot create", reason)

    def test_not_enough_space_is_unusable(self):
        # df's free space against a size no disk has.
        sha = hashlib.sha256(b"x").hexdigest()
        out, _unused = self.sh(mc.hit_command(self.dir, sha, 1 << 60), (ARGS + "\n").encode())
        kind, reason = mc.marker(out)
        self.assertEqual(kind, mc.UNUSABLE)
        self.assertIn("not enough free space", reason)

    def test_damaged_upload_is_refused_and_leaves_nothing(self):
        data = fake_binary("d")
        sha = hashlib.sha256(data).hexdigest()
        self.sh(mc.hit_command(self.dir, sha, len(data)), b"")
        out, _unused = self.sh(mc.install_command(self.dir, sha), (ARGS + "\n").encode() + data[:-3])
        self.assertEqual(mc.marker(out), (mc.UNUSABLE, "the binary arrived damaged (its sha256 differs)"))
        self.assertEqual(os.listdir(self.dir), [])

    def test_tilde_uses_the_remote_users_home(self):
        self.dir = "~/c2"
        out, installed = self.run_task(fake_binary("h"))
        self.assertTrue(installed)
        self.assertIn("ran-h", out)
        self.assertTrue(os.path.isdir(os.path.join(self.scratch, "home", "c2")))


class Settings(unittest.TestCase):
    def test_values(self):
        self.assertEqual(mc.cache_dir(None), mc.DEFAULT_DIR)
        for off in (False, "false", "no", "off", "0", ""):
            self.assertIsNone(mc.cache_dir(off))
        self.assertEqual(mc.cache_dir("/var/cache/x"), "/var/cache/x")
        self.assertEqual(mc.cache_dir("~/x"), "~/x")

    def test_bad_values_name_the_setting(self):
        for bad in ("relative/dir", 3, ["/x"], "/a\nb"):
            with self.subTest(bad):
                with self.assertRaises(mc.SettingError) as e:
                    mc.cache_dir(bad)
                self.assertIn(mc.SETTING, str(e.exception))

    def test_markers(self):
        self.assertEqual(mc.marker(mc.MISS + "\n"), (mc.MISS, ""))
        self.assertEqual(mc.marker(mc.UNUSABLE + " why\n"), (mc.UNUSABLE, "why"))
        self.assertEqual(mc.marker('{"changed": false}'), (None, ""))

    def test_bad_sha_is_refused(self):
        with self.assertRaises(ValueError):
            mc.hit_command("/x", "'; rm -rf /", 1)


if __name__ == "__main__":
    unittest.main()


class BinarySha256(unittest.TestCase):
    """The binary's sha256: from bin/SHA256SUMS only while its size and mtime match."""

    def setUp(self):
        self.bin = tempfile.mkdtemp(prefix="chz-sums-")
        self.addCleanup(shutil.rmtree, self.bin)
        self.path = os.path.join(self.bin, "mod_linux_amd64")
        with open(self.path, "wb") as f:
            f.write(b"binary one")
        self.real = hashlib.sha256(b"binary one").hexdigest()

    def write_sums(self, *lines):
        with open(os.path.join(self.bin, mc.SUMS), "w") as f:
            f.write("".join(line + "\n" for line in lines))

    def entry(self, sha, name="mod_linux_amd64", size=None, mtime_ns=None):
        st = os.stat(self.path)
        return "%s %d %d %s" % (sha, st.st_size if size is None else size, st.st_mtime_ns if mtime_ns is None else mtime_ns, name)

    def test_no_sums_file_hashes(self):
        self.assertEqual(mc.binary_sha256(self.path), self.real)

    def test_matching_entry_is_used_without_hashing(self):
        # A sum the file does not have, with its size and mtime: taken as is,
        # which shows the file was not read.
        recorded = "ab" * 32
        self.write_sums(self.entry("cd" * 32, name="other_linux_amd64"), self.entry(recorded))
        self.assertEqual(mc.binary_sha256(self.path), recorded)

    def test_stale_entries_are_ignored(self):
        st = os.stat(self.path)
        for why, line in {
            "another mtime": self.entry("ab" * 32, mtime_ns=st.st_mtime_ns - 1),
            "another size": self.entry("ab" * 32, size=st.st_size + 1),
            "another binary": self.entry("ab" * 32, name="mod_linux_arm64"),
            "not a sha256": self.entry("xy" * 32),
            "a missing field": "%s %d mod_linux_amd64" % ("ab" * 32, st.st_size),
        }.items():
            with self.subTest(why):
                self.write_sums(line)
                self.assertEqual(mc.binary_sha256(self.path), self.real)

    def test_a_rebuilt_binary_is_hashed_again(self):
        self.write_sums(self.entry(self.real))
        before = os.stat(self.path)
        with open(self.path, "r+b") as f:  # same size, new bytes, a later mtime
            f.write(b"binary two")
        os.utime(self.path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        self.assertEqual(mc.binary_sha256(self.path), hashlib.sha256(b"binary two").hexdigest())

    def test_unreadable_sums_file_hashes(self):
        with open(os.path.join(self.bin, mc.SUMS), "wb") as f:
            f.write(b"\xff\xfe not utf-8\n")
        self.assertEqual(mc.binary_sha256(self.path), self.real)
