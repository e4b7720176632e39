# WTFPL (see LICENSE)
"""The action plugins' argument spec, read from the sidecar once per run.

ansible-playbook imports an action plugin in its main process, then forks a
worker for each task: the spec must be built at import (class definition),
so the workers inherit it. Needs ansible-core (Debian's, on /usr/bin/python3).
"""

import importlib
import os
import shutil
import sys
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

try:
    import ansible  # noqa: F401 pylint: disable=unused-import
    import yaml
except ImportError:  # pragma: no cover - a python3 without ansible-core
    ansible = None


@unittest.skipIf(ansible is None, "ansible-core is not importable by %s" % sys.executable)
class Preload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The repository is the collection: put it where Python finds it as
        # ansible_collections.chezlepro.sovereign.
        cls.root = tempfile.mkdtemp(prefix="chz-spec-")
        os.makedirs(os.path.join(cls.root, "ansible_collections", "chezlepro"))
        os.symlink(REPO, os.path.join(cls.root, "ansible_collections", "chezlepro", "sovereign"))
        # ansible-core's collection finder (installed by its plugin loader,
        # which go_dispatch imports) serves ansible_collections from here.
        os.environ["ANSIBLE_COLLECTIONS_PATH"] = cls.root
        importlib.import_module("ansible.plugins.loader")
        cls.spec = importlib.import_module("ansible_collections.chezlepro.sovereign.plugins.plugin_utils.argument_spec")
        cls.dispatch = importlib.import_module("ansible_collections.chezlepro.sovereign.plugins.plugin_utils.go_dispatch")

    @classmethod
    def tearDownClass(cls):
        # The link first: rmtree would not follow it, but nothing of the
        # repository is to be anywhere near a removal.
        os.unlink(os.path.join(cls.root, "ansible_collections", "chezlepro", "sovereign"))
        shutil.rmtree(cls.root)

    def setUp(self):
        self.spec._VALIDATORS.clear()

    def test_defining_the_action_builds_the_validator(self):
        type("ActionModule", (self.dispatch.GoModuleAction,), {"MODULE": "binary_stage"})
        self.assertIn("binary_stage", self.spec._VALIDATORS)
        # validate() then uses that one: a later change of the sidecar's reading is not seen.
        built = self.spec._VALIDATORS["binary_stage"]
        self.spec.validate("binary_stage", {"src": "/x", "root": "/opt/x", "slot": "blue"})
        self.assertIs(self.spec._VALIDATORS["binary_stage"], built)

    def test_each_plugin_of_the_collection_preloads_its_module(self):
        for module in ("binary_stage", "bluegreen_unit", "source_build"):
            path = os.path.join(REPO, "plugins", "action", module + ".py")
            spec = importlib.util.spec_from_file_location("chz_action_" + module, path)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
            self.assertIn(module, self.spec._VALIDATORS, module)

    def test_an_unreadable_sidecar_fails_the_task_not_the_import(self):
        type("ActionModule", (self.dispatch.GoModuleAction,), {"MODULE": "no_such_module"})
        self.assertNotIn("no_such_module", self.spec._VALIDATORS)
        with self.assertRaises(FileNotFoundError):
            self.spec.validate("no_such_module", {})

    def test_the_sidecars_are_read_with_libyaml_where_pyyaml_has_it(self):
        if not hasattr(yaml, "CSafeLoader"):
            self.skipTest("this PyYAML has no libyaml")
        self.assertIs(self.spec._LOADER, yaml.CSafeLoader)


if __name__ == "__main__":
    unittest.main()
