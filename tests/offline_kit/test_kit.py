"""Unit tests of roles/offline_kit/files/kit.py: a small kit made in a temp
directory (real git bundles, stand-in archives), sealed, verified, then
altered one way at a time; each alteration must be named by verify.

  python3 -m unittest discover -s tests/offline_kit      (make unit runs it)
"""
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

# No __pycache__ beside kit.py: it would land in the collection's tarball.
sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("kit", os.path.join(HERE, "../../roles/offline_kit/files/kit.py"))
kit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kit)

GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t", GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")


def git(*args):
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=GIT_ENV).stdout


def make_repo(path, message):
    git("init", "-q", "-b", "main", path)
    git("-C", path, "commit", "-q", "--allow-empty", "-m", message)
    git("-C", path, "tag", "v1")


class KitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.kit = os.path.join(self.tmp, "kit")
        src = os.path.join(self.tmp, "src")
        # a build: artifact + manifest
        arts = os.path.join(src, "arts", "webapp", "v1")
        os.makedirs(arts)
        with open(os.path.join(arts, "webapp"), "wb") as f:
            f.write(b"binary")
        with open(os.path.join(arts, "manifest.json"), "w") as f:
            json.dump({"name": "webapp", "version": "v1", "artifact": "/store/webapp", "go_version": "go1.99.1",
                       "sha256": hashlib.sha256(b"binary").hexdigest()}, f)
        # a toolchain archive with its .sha256
        tc = os.path.join(src, "tc")
        os.makedirs(tc)
        with open(os.path.join(tc, "go1.99.1.linux-amd64.tar.gz"), "wb") as f:
            f.write(b"toolchain")
        with open(os.path.join(tc, "go1.99.1.linux-amd64.tar.gz.sha256"), "w") as f:
            f.write("%s  go1.99.1.linux-amd64.tar.gz\n" % hashlib.sha256(b"toolchain").hexdigest())
        self.tc = tc
        # a mirror, bundled as the mirrors task file does
        repo = os.path.join(src, "webapp.git")
        make_repo(repo, "webapp")
        os.makedirs(os.path.join(self.kit, "mirrors", "h1"))
        bundle = os.path.join(self.kit, "mirrors", "h1", "webapp.git.bundle")
        git("-C", repo, "bundle", "create", "-q", bundle, "--all")
        self.other = os.path.join(src, "other")
        make_repo(self.other, "another repository")

        a = kit.add_artifacts(self.kit, os.path.join(src, "arts"))
        self.assertEqual(a["go_versions"], ["go1.99.1"])
        t = kit.add_toolchains(self.kit, tc, a["go_versions"])
        r = kit.add_repo(self.kit, "collection", repo, "chezlepro-sovereign")
        i = kit.add_repo(self.kit, "inventory", os.path.join(src, "tc"))
        os.makedirs(os.path.join(self.kit, "apt", "repo"))
        with open(os.path.join(self.kit, "apt", "repo", "pkg_1.0_all.deb"), "wb") as f:
            f.write(b"deb")
        with open(os.path.join(self.kit, "apt", "repo", "Packages"), "w") as f:
            f.write("Package: pkg\nFilename: ./pkg_1.0_all.deb\n\n")
        record = {"schema": 1,
                  "mirrors": [{"host": "h1", "path": "/srv/git/webapp.git", "bundle": "mirrors/h1/webapp.git.bundle",
                               "refs": kit.bundle_heads(bundle)}],
                  "debian": {"repo": "apt/repo", "debs": ["pkg_1.0_all.deb"]},
                  "toolchains": t["toolchains"], "artifacts": a["artifacts"], "collection": {"repo": r}, "inventories": [i]}
        with open(os.path.join(self.kit, "KIT.json"), "w") as f:
            json.dump(record, f)
        kit.seal(self.kit)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def p(self, rel):
        return os.path.join(self.kit, rel)

    def assertNamed(self, want):
        problems = kit.verify(self.kit)
        self.assertTrue(any(want in p for p in problems), "want %r in %s" % (want, problems))

    def test_whole_kit_verifies(self):
        self.assertEqual(kit.verify(self.kit), [])
        # sha256sum -c reads the MANIFEST too
        subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST"], cwd=self.kit, check=True)

    def test_missing_file(self):
        os.remove(self.p("artifacts/webapp/v1/manifest.json"))
        self.assertNamed(self.p("artifacts/webapp/v1/manifest.json") + ": missing")

    def test_altered_file(self):
        with open(self.p("inventory/tc.tar.gz"), "ab") as f:
            f.write(b"x")
        self.assertNamed(self.p("inventory/tc.tar.gz") + ": altered")

    def test_unexpected_file(self):
        open(self.p("stray"), "w").close()
        self.assertNamed(self.p("stray") + ": not in the MANIFEST")

    def test_no_manifest(self):
        os.remove(self.p("MANIFEST"))
        self.assertNamed("MANIFEST: missing")

    def test_bundle_of_another_repository(self):
        git("-C", self.other, "bundle", "create", "-q", self.p("mirrors/h1/webapp.git.bundle"), "--all")
        kit.seal(self.kit)
        self.assertNamed(self.p("mirrors/h1/webapp.git.bundle") + ": its refs are not those KIT.json records for h1:/srv/git/webapp.git")

    def test_not_a_bundle(self):
        with open(self.p("mirrors/h1/webapp.git.bundle"), "w") as f:
            f.write("not a bundle")
        kit.seal(self.kit)
        self.assertNamed(self.p("mirrors/h1/webapp.git.bundle") + ": not a valid git bundle")

    def test_toolchain_sha256_differs(self):
        with open(self.p("toolchain/go1.99.1.linux-amd64.tar.gz"), "ab") as f:
            f.write(b"x")
        kit.seal(self.kit)
        self.assertNamed(self.p("toolchain/go1.99.1.linux-amd64.tar.gz") + ": sha256 ")
        self.assertNamed("KIT.json records %s for go1.99.1" % hashlib.sha256(b"toolchain").hexdigest())

    def test_artifact_differs_from_its_manifest(self):
        with open(self.p("artifacts/webapp/v1/webapp"), "ab") as f:
            f.write(b"x")
        kit.seal(self.kit)
        self.assertNamed(self.p("artifacts/webapp/v1/webapp") + ": sha256 ")

    def test_deb_not_indexed(self):
        with open(self.p("apt/repo/Packages"), "w") as f:
            f.write("")
        kit.seal(self.kit)
        self.assertNamed("pkg_1.0_all.deb is not in it")

    def test_toolchain_refused_when_its_sha256_file_disagrees(self):
        with open(os.path.join(self.tc, "go1.99.1.linux-amd64.tar.gz"), "ab") as f:
            f.write(b"x")
        with self.assertRaisesRegex(kit.Refused, r"go1.99.1.linux-amd64.tar.gz: sha256 is [0-9a-f]{64}, .*\.sha256 records"):
            kit.add_toolchains(self.p("again"), self.tc, ["go1.99.1"])

    def test_no_toolchain_for_a_recorded_version(self):
        with self.assertRaisesRegex(kit.Refused, "no toolchain archive of go1.99.2 in "):
            kit.add_toolchains(self.p("again"), self.tc, ["go1.99.2"])

    def test_no_builds(self):
        with self.assertRaisesRegex(kit.Refused, "no build"):
            kit.add_artifacts(self.p("again"), self.tc)


if __name__ == "__main__":
    unittest.main()
