# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Fails on a conditional that YAML did not read as a string.

An unquoted `that: x is search('a: b')` is a mapping to YAML, not an
expression: ansible-core 2.14 treats it as always true (an assertion that
cannot fail) and 2.19 refuses it. Each element of `that`, `when`,
`failed_when`, `changed_when` and `until` must be a string (or a plain true/false).

  conditionals_check.py FILE...   prints each offender as FILE:LINE: KEY: ...
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

import yaml

KEYS = ("that", "when", "failed_when", "changed_when", "until")


class Loader(yaml.SafeLoader):
    """SafeLoader that keeps every node's line and reads Ansible's tags (!unsafe, !vault) as plain values."""


def _any_tag(loader, suffix, node):
    del suffix
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


Loader.add_multi_constructor("!", _any_tag)


def offenders(node, path):
    """Yield (line, key, what) for each conditional element of NODE that is not a string or a bool."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value in KEYS:
                items = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for item in items:
                    if not isinstance(item, yaml.ScalarNode):
                        kind = "a mapping (an unquoted ': ' inside?)" if isinstance(item, yaml.MappingNode) else "a list"
                        yield item.start_mark.line + 1, key.value, kind
                    elif item.tag not in ("tag:yaml.org,2002:str", "tag:yaml.org,2002:bool") and not item.tag.startswith("!"):
                        yield item.start_mark.line + 1, key.value, "a %s, not a string" % item.tag.rsplit(":", 1)[-1]
            yield from offenders(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from offenders(item, path)


def main(paths):
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            try:
                docs = list(yaml.compose_all(f, Loader=Loader))
            except yaml.YAMLError as e:
                print("%s: not YAML: %s" % (path, e))
                bad += 1
                continue
        for doc in docs:
            for line, key, what in offenders(doc, path):
                print("%s:%d: %s: an element is %s; quote the expression" % (path, line, key, what))
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
