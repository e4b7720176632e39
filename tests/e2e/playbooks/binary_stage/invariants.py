"""Checks, on a target, what binary_stage promises even after a crash.

    invariants.py ROOT

Every slot (symlink directly under ROOT) points at ROOT/releases/<release>,
a directory under its final name whose binary's sha256 is the one recorded
in its .release.json and the one its name ends with; every release under a
final name is complete. Prints a JSON summary (slots, releases, leftovers,
the sha256 each slot serves) and exits 1 listing the violations, if any.
"""
import hashlib
import json
import os
import sys


def is_leftover(name):
    return name.startswith(".") and ".tmp-" in name


def check_release(path, problems):
    try:
        with open(os.path.join(path, ".release.json")) as f:
            meta = json.load(f)
        with open(os.path.join(path, meta["binary"]), "rb") as f:
            got = hashlib.file_digest(f, "sha256").hexdigest()
    except (OSError, ValueError, KeyError) as e:
        problems.append("release %s is incomplete: %s" % (path, e))
        return None
    if got != meta["sha256"]:
        problems.append("release %s: binary sha256 %s, recorded %s" % (path, got, meta["sha256"]))
    if not os.path.basename(path).endswith("-" + got[:12]):
        problems.append("release %s: name does not end with %s" % (path, got[:12]))
    return got


def main(root):
    problems, leftovers, releases, slots, serves = [], [], [], {}, {}
    rel_dir = os.path.join(root, "releases")
    for name in sorted(os.listdir(rel_dir)):
        path = os.path.join(rel_dir, name)
        if is_leftover(name):
            leftovers.append(path)
            continue
        releases.append(name)
        check_release(path, problems)
        leftovers += [os.path.join(path, n) for n in os.listdir(path) if is_leftover(n)]
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not os.path.islink(path):
            continue
        if is_leftover(name):
            leftovers.append(path)
            continue
        link = os.readlink(path)
        target = os.path.normpath(os.path.join(root, link))
        slots[name] = link
        if os.path.dirname(target) != rel_dir:
            problems.append("slot %s points at %s, outside %s" % (name, link, rel_dir))
        elif not os.path.isdir(target):
            problems.append("slot %s points at missing release %s" % (name, link))
        else:
            serves[name] = check_release(target, problems)
    state = os.path.join(root, ".binary_stage")
    if os.path.isdir(state):
        leftovers += [os.path.join(state, n) for n in os.listdir(state) if is_leftover(n)]
    print(json.dumps({"slots": slots, "serves": serves, "releases": releases,
                      "leftovers": leftovers, "problems": problems}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
