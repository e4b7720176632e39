"""The offline kit's seal and its check, on the controller, offline.

  kit.py artifacts KIT DIR         copy DIR's <name>/<version>/ builds into KIT/artifacts; JSON records
  kit.py toolchains KIT DIR V...   copy the archives of Go versions V from DIR into KIT/toolchain,
                                   each checked against its .sha256 file; JSON records
  kit.py repo KIT SUBDIR PATH [NAME]  a git repository as SUBDIR/NAME.bundle (all refs), another
                                   directory as SUBDIR/NAME.tar.gz (NAME: PATH's); JSON record
  kit.py seal KIT                  write KIT/MANIFEST: the sha256 of every other file (sha256sum -c reads it)
  kit.py verify KIT                check the kit; one line per problem, naming the file; exit 1 when any

verify checks: every file the MANIFEST lists is there with that sha256, no
file is there that it does not list; KIT.json's records hold: each mirror
bundle is a valid git bundle whose refs are the ones recorded (a bundle of
another repository has other refs), each toolchain archive has the sha256
recorded (and in its .sha256 file), each artifact has its manifest's sha256,
the apt repository's Packages index lists every .deb recorded.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

MANIFEST = "MANIFEST"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def files(kit):
    out = []
    for root, dirs, names in os.walk(kit):
        dirs.sort()
        for n in sorted(names):
            rel = os.path.relpath(os.path.join(root, n), kit)
            if rel != MANIFEST:
                out.append(rel)
    return out


def seal(kit):
    lines = ["%s  %s\n" % (sha256(os.path.join(kit, rel)), rel) for rel in files(kit)]
    tmp = os.path.join(kit, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, os.path.join(kit, MANIFEST))
    return len(lines)


def bundle_heads(path):
    """The refs of a git bundle, {ref: sha}, after git bundle verify."""
    with tempfile.TemporaryDirectory() as repo:
        subprocess.run(["git", "init", "-q", "--bare", repo], check=True)
        v = subprocess.run(["git", "-C", repo, "bundle", "verify", "-q", path], capture_output=True, text=True, check=False)
        if v.returncode != 0:
            raise ValueError("not a valid git bundle: " + (v.stderr.strip().splitlines() or ["?"])[-1])
        out = subprocess.run(["git", "-C", repo, "bundle", "list-heads", path], capture_output=True, text=True, check=True).stdout
    heads = {}
    for line in out.splitlines():
        sha, ref = line.split(" ", 1)
        heads[ref] = sha
    return heads


def verify(kit):
    problems = []
    mpath = os.path.join(kit, MANIFEST)
    if not os.path.isfile(mpath):
        return ["%s: missing (not a sealed kit?)" % mpath]
    listed = {}
    with open(mpath) as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("  ", 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                problems.append("%s line %d: not 'SHA256  FILE'" % (mpath, n))
                continue
            listed[parts[1]] = parts[0]
    present = set(files(kit))
    for rel, want in sorted(listed.items()):
        p = os.path.join(kit, rel)
        if rel not in present:
            problems.append("%s: missing (the MANIFEST lists it)" % p)
        elif sha256(p) != want:
            problems.append("%s: altered (sha256 %s, the MANIFEST says %s)" % (p, sha256(p), want))
    for rel in sorted(present - set(listed)):
        problems.append("%s: not in the MANIFEST" % os.path.join(kit, rel))
    kpath = os.path.join(kit, "KIT.json")
    try:
        with open(kpath) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        return problems + ["%s: unreadable (%s)" % (kpath, e)]
    for m in record.get("mirrors", []):
        p = os.path.join(kit, m["bundle"])
        if not os.path.isfile(p):
            continue  # reported above
        try:
            heads = bundle_heads(p)
        except (ValueError, subprocess.CalledProcessError) as e:
            problems.append("%s: %s" % (p, e))
            continue
        if heads != m["refs"]:
            problems.append("%s: its refs are not those KIT.json records for %s:%s (a bundle of another repository?)"
                            % (p, m["host"], m["path"]))
    for t in record.get("toolchains", []):
        p = os.path.join(kit, t["file"])
        if not os.path.isfile(p):
            continue
        got = sha256(p)
        if got != t["sha256"]:
            problems.append("%s: sha256 %s, KIT.json records %s for %s" % (p, got, t["sha256"], t["version"]))
        s = p + ".sha256"
        if os.path.isfile(s):
            with open(s) as f:
                rec = (f.read().split() or [""])[0]
            if rec != t["sha256"]:
                problems.append("%s: records %s, KIT.json %s" % (s, rec, t["sha256"]))
    deb = record.get("debian") or {}
    if deb:
        pk = os.path.join(kit, deb["repo"], "Packages")
        try:
            with open(pk) as f:
                indexed = {os.path.basename(line.split(":", 1)[1].strip()) for line in f if line.startswith("Filename:")}
        except OSError as e:
            indexed = set()
            problems.append("%s: unreadable (%s)" % (pk, e))
        for d in deb.get("debs", []):
            if d not in indexed:
                problems.append("%s: %s is not in it (apt would not see it)" % (pk, d))
    for a in record.get("artifacts", []):
        p, mp = os.path.join(kit, a["file"]), os.path.join(kit, a["manifest"])
        if not (os.path.isfile(p) and os.path.isfile(mp)):
            continue
        with open(mp) as f:
            want = json.load(f).get("sha256", "")
        if sha256(p) != want:
            problems.append("%s: sha256 %s, its manifest %s says %s" % (p, sha256(p), mp, want))
    return problems


class Refused(Exception):
    pass


def add_artifacts(kit, src):
    """Copies every <name>/<version>/ holding a manifest.json; records them."""
    records, versions = [], set()
    for root, dirs, names in os.walk(src):
        dirs.sort()
        if "manifest.json" not in names:
            continue
        rel = os.path.relpath(root, src)
        with open(os.path.join(root, "manifest.json")) as f:
            m = json.load(f)
        art = os.path.basename(m.get("artifact", ""))
        if not art or art not in names:
            raise Refused("%s: its manifest names artifact %r, which is not beside it" % (root, m.get("artifact")))
        dest = os.path.join(kit, "artifacts", rel)
        os.makedirs(dest, exist_ok=True)
        for n in sorted(names):
            shutil.copy2(os.path.join(root, n), os.path.join(dest, n))
        records.append({"name": m.get("name"), "version": m.get("version"), "go_version": m.get("go_version", ""),
                        "sha256": m.get("sha256"), "file": "artifacts/%s/%s" % (rel, art),
                        "manifest": "artifacts/%s/manifest.json" % rel})
        if m.get("go_version"):
            versions.add(m["go_version"])
    if not records:
        raise Refused("%s: no build (NAME/VERSION/manifest.json) to put in the kit" % src)
    return {"artifacts": records, "go_versions": sorted(versions)}


def add_toolchains(kit, src, versions):
    records = []
    for v in versions:
        found = sorted(n for n in os.listdir(src) if re.fullmatch(r"(v0\.0\.1-)?%s\.linux-(amd64|arm64)\.(tar\.gz|zip)" % re.escape(v), n))
        if not found:
            raise Refused("no toolchain archive of %s in %s (%s.linux-ARCH.tar.gz or v0.0.1-%s.linux-ARCH.zip), which the builds record"
                          % (v, src, v, v))
        for n in found:
            p, s = os.path.join(src, n), os.path.join(src, n + ".sha256")
            if not os.path.isfile(s):
                raise Refused("%s: no %s beside it to check it against" % (p, os.path.basename(s)))
            with open(s) as f:
                want = (f.read().split() or [""])[0]
            got = sha256(p)
            if got != want:
                raise Refused("%s: sha256 is %s, %s records %s" % (p, got, s, want))
            os.makedirs(os.path.join(kit, "toolchain"), exist_ok=True)
            shutil.copy2(p, os.path.join(kit, "toolchain", n))
            shutil.copy2(s, os.path.join(kit, "toolchain", n + ".sha256"))
            arch = re.search(r"linux-(amd64|arm64)", n).group(1)
            records.append({"version": v, "arch": arch, "file": "toolchain/" + n, "sha256": got})
    return {"toolchains": records}


def add_repo(kit, subdir, path, name=None):
    path = os.path.abspath(path)
    name = name or os.path.basename(path.rstrip("/"))
    os.makedirs(os.path.join(kit, subdir), exist_ok=True)
    top = subprocess.run(["git", "-C", path, "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    if top.returncode == 0 and os.path.realpath(top.stdout.strip()) == os.path.realpath(path):
        rel = "%s/%s.bundle" % (subdir, name)
        subprocess.run(["git", "-C", path, "bundle", "create", "-q", os.path.join(kit, rel), "--all"], check=True)
        return {"path": path, "file": rel, "kind": "git bundle", "refs": bundle_heads(os.path.join(kit, rel))}
    if not os.path.isdir(path):
        raise Refused("%s: no such directory" % path)
    rel = "%s/%s.tar.gz" % (subdir, name)
    subprocess.run(["tar", "-C", os.path.dirname(path), "-czf", os.path.join(kit, rel), name], check=True)
    return {"path": path, "file": rel, "kind": "tar"}


def main(argv):
    cmds = {"seal": 3, "verify": 3, "artifacts": 4, "toolchains": 5, "repo": 5}
    if len(argv) < 3 or argv[1] not in cmds or len(argv) < cmds[argv[1]]:
        sys.exit(__doc__)
    kit = os.path.abspath(argv[2])
    if not os.path.isdir(kit):
        sys.exit("%s: no such kit directory" % kit)
    try:
        if argv[1] == "artifacts":
            out = add_artifacts(kit, argv[3])
        elif argv[1] == "toolchains":
            out = add_toolchains(kit, argv[3], argv[4:])
        elif argv[1] == "repo":
            out = add_repo(kit, argv[3], argv[4], *argv[5:6])
        else:
            out = None
    except (Refused, OSError, ValueError, subprocess.CalledProcessError) as e:
        sys.exit(str(e))
    if out is not None:
        print(json.dumps(out))
        return 0
    if argv[1] == "seal":
        print("sealed %s: %d files" % (kit, seal(kit)))
        return 0
    problems = verify(kit)
    for p in problems:
        print(p)
    if problems:
        return 1
    n = len(files(kit))
    size = sum(os.path.getsize(os.path.join(kit, r)) for r in files(kit))
    print("kit %s: %d files, %d bytes, all as the MANIFEST and KIT.json record" % (kit, n, size))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
