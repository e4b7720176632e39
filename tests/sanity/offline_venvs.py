# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Prepares ansible-test's sanity virtual environments from Debian's packages.

ansible-test sanity runs each test in a virtual environment it fills with
pip from PyPI, which a machine with the internet cut cannot reach. This
creates each environment where ansible-test will look for it (the path it
derives from its own requirement lists, computed here with its own code),
empty but seeing the system's site-packages, where tests/setup.sh's
Debian packages (pylint, pycodestyle, python3-voluptuous, yamllint, ...)
provide what the pinned requirements would. An environment already marked
complete is left alone. CHEZLEPRO_SANITY_SITE (tests/setup.sh --sanity-site
SERIES: pylint 3 and astroid from Debian trixie, for 2.19, whose pylint
plugins need pylint 3) is put before the system's packages in the pylint
environment.

Run from the collection's root (ansible-test's data context needs it):
  offline_venvs.py TEST...   (sanity test names, or import.module, import.plugin)
  offline_venvs.py --unrunnable TEST...   prints "TEST: why" for each test whose
      tool the system lacks or has in an older major version than pinned
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import inspect
import json
import os
import re
import subprocess
import sys
from importlib import metadata

import ansible_test

from ansible_test._internal.commands.sanity import hash_pip_commands
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import collect_requirements


def venv_path(python, name, minimize):
    """Where ansible-test keeps the environment of sanity test NAME (see create_sanity_virtualenv)."""
    wanted = dict(python=python, controller=True, virtualenv=False, command=None, ansible=False, cryptography=False,
                  coverage=False, minimize=minimize, sanity=name)
    # The arguments differ between versions (2.19 has no virtualenv, cryptography): pass those it takes.
    accepted = inspect.signature(collect_requirements).parameters
    commands = collect_requirements(**dict((k, v) for k, v in wanted.items() if k in accepted))
    label = 'sanity.%s' % name if commands else 'sanity'
    path = os.path.join(os.path.expanduser('~/.ansible/test/venv'), label, python.version, hash_pip_commands(commands))
    return path, commands


def has_libyaml():
    """True when the system's PyYAML has its C loader (ansible-test records it per environment)."""
    try:
        from yaml import CSafeLoader  # pylint: disable=unused-import
    except ImportError:
        return False
    return True


def add_site(python, path, site):
    """Puts site before the system's packages in the environment at path (a .pth file in its own site-packages)."""
    own = os.path.join(path, 'lib', 'python%s' % python.version, 'site-packages')
    with open(os.path.join(own, 'chezlepro-sanity-site.pth'), 'w') as pth:
        pth.write(site + '\n')


def prepare(python, name):
    # The import test's environments are created with minimize=True.
    path, commands = venv_path(python, name, name.startswith('import.'))
    site = os.environ.get('CHEZLEPRO_SANITY_SITE')
    if os.path.exists(os.path.join(path, 'marker.txt')):
        if site and name == 'pylint':
            add_site(python, path, site)
        return
    subprocess.run([python.path, '-m', 'venv', '--clear', '--system-site-packages', '--without-pip', path], check=True)
    with open(os.path.join(path, 'meta.install.json'), 'w') as meta:
        json.dump([command.serialize() for command in commands], meta, indent=4)
    with open(os.path.join(path, 'meta.yaml.json'), 'w') as meta:
        json.dump(has_libyaml(), meta)
    if site and name == 'pylint':
        add_site(python, path, site)
    with open(os.path.join(path, 'marker.txt'), 'w'):
        pass
    print('sanity: %s uses the system packages (%s)' % (name, path))


# The tool each test runs, which must be there, of the major version
# ansible-test pins (an older one cannot load its plugins or schema).
TOOLS = {
    'pep8': ['pycodestyle'],
    'pylint': ['pylint'],
    'runtime-metadata': ['voluptuous'],
    'validate-modules': ['voluptuous', 'antsibull-docs-parser'],
    'yamllint': ['yamllint'],
}


def unrunnable(name):
    """Why sanity test NAME cannot run on the system's packages, or None."""
    path = os.path.join(os.path.dirname(ansible_test.__file__), '_data', 'requirements', 'sanity.%s.txt' % name)
    pinned = {}
    if os.path.exists(path):
        with open(path) as requirements:
            for line in requirements:
                m = re.match(r'^([A-Za-z0-9_.-]+)==(\d+)', line)
                if m:
                    pinned[m.group(1).lower()] = int(m.group(2))
    for tool in TOOLS.get(name, []):
        if tool not in pinned:
            continue
        try:
            have = metadata.version(tool)
        except metadata.PackageNotFoundError:
            return 'needs %s, which no installed package provides' % tool
        if int(have.split('.')[0]) < pinned[tool]:
            return 'needs %s %d, the system has %s' % (tool, pinned[tool], have)
    return None


def main(args):
    if args[:1] == ['--unrunnable']:
        for name in args[1:]:
            why = unrunnable(name)
            if why:
                print('%s: %s' % (name, why))
        return
    version = '%d.%d' % sys.version_info[:2]
    python = NativePythonConfig(version=version, path=sys.executable)
    for name in args:
        prepare(python, name)


if __name__ == '__main__':
    main(sys.argv[1:])
