#!/usr/bin/python3
"""Conditionals that YAML reads as something else than a string.

`that: x is search('a: b')` unquoted is a mapping to YAML, not an
expression: ansible-core 2.14 takes it as always true, 2.19 refuses it
("Conditional expressions must be strings"). This finds every value (or
list item) of when, that, failed_when, changed_when and until that is a
mapping, with its file and line, in the named files (default: the YAML
files git tracks, vendor/ aside). Exit 1 when it finds one.
"""
import subprocess
import sys

import yaml

KEYS = {"when", "that", "failed_when", "changed_when", "until"}


def mappings(node):
    """The mapping nodes among a conditional's value: itself or its items."""
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [item for item in node.value if isinstance(item, yaml.MappingNode)]
    return []


def walk(node, path, found, seen):
    if id(node) in seen:  # an alias: its anchor was walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in KEYS:
                for bad in mappings(value):
                    found.append(f"{path}:{bad.start_mark.line + 1}: {key.value}: YAML reads this as a mapping, "
                                 "not an expression: quote the whole expression")
            walk(value, path, found, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            walk(item, path, found, seen)


def main(paths):
    if not paths:
        listed = subprocess.run(["git", "ls-files", "*.yml", "*.yaml"], check=True, capture_output=True, text=True)
        paths = [p for p in listed.stdout.splitlines() if not p.startswith("vendor/") and "/vendor/" not in p]
    found = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for doc in yaml.compose_all(f, Loader=yaml.SafeLoader):
                    if doc is not None:
                        walk(doc, path, found, set())
        except (OSError, yaml.YAMLError) as e:
            found.append(f"{path}: cannot read as YAML: {e}")
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
