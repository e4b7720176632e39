"""Reads `go test -json` on stdin; prints one line per package, the output of
every failed test, and every skipped test with its reason (t.Skip's message);
ends with "PASSED FAILED SKIPPED" counts of top-level tests for tests/unit.sh.
A package that fails without a failing test (a build error) counts as one
failure."""
import json
import sys

out = {}        # (pkg, test) -> output lines
tests = {}      # pkg -> {"pass": n, "fail": n, "skip": n}
failed_tests = set()
passed = failed = skipped = 0
for line in sys.stdin:
    try:
        ev = json.loads(line)
    except ValueError:
        print(line, end="")  # go's own messages (a vendor problem, say)
        continue
    pkg, test, action = ev.get("ImportPath") or ev.get("Package", ""), ev.get("Test"), ev["Action"]
    if action in ("output", "build-output"):
        out.setdefault((pkg, test), []).append(ev.get("Output", ""))
        continue
    if test is None:
        if action in ("pass", "fail", "skip"):
            c = tests.get(pkg, {"pass": 0, "fail": 0, "skip": 0})
            if action == "fail" and c["fail"] == 0:
                failed += 1
                print("FAIL  %s (no test failed: build or package failure):" % pkg)
                print("".join("      " + l for l in out.get((pkg, None), [])), end="")
            elif action == "skip" and not c["pass"] + c["fail"]:
                pass  # a package with no test files: nothing ran
            else:
                print("%-4s  %s (%d passed, %d failed, %d skipped)" % (
                    "ok" if action != "fail" else "FAIL", pkg, c["pass"], c["fail"], c["skip"]))
        elif action == "build-fail":
            pass  # its package's "fail" follows
        continue
    if "/" in test or action not in ("pass", "fail", "skip"):
        continue  # subtests count through their top-level test
    c = tests.setdefault(pkg, {"pass": 0, "fail": 0, "skip": 0})
    c[action] += 1
    lines = out.get((pkg, test), [])
    if action == "pass":
        passed += 1
    elif action == "fail":
        failed += 1
        print("FAIL  %s %s:" % (pkg, test))
        print("".join("      " + l for l in lines), end="")
    else:
        skipped += 1
        reason = [l.strip() for l in lines if not l.startswith(("=== ", "--- "))]
        print("SKIP  %s %s: %s" % (pkg, test, " ".join(reason) or "(no reason given)"))
print("%d %d %d" % (passed, failed, skipped))
