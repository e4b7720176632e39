# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Architecture dispatch for the collection's Go modules.

Each module ships as one static binary per platform, named
``<module>_<system>_<arch>`` under plugins/modules/. Playbooks call the
module by its plain FQCN; this action plugin finds the target's platform and
runs the matching binary through the ordinary module machinery, so check
mode, diff mode, become, no_log, environment and async behave exactly as for
any other module.

The platform comes, in order, from: the fact this plugin cached earlier in
the run (``chezlepro_sovereign_platform``), gathered facts
(``ansible_system``/``ansible_architecture``), or one ``uname -sm`` on the
target. The result is returned as a fact so later tasks on the same host
need no remote command at all.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

display = Display()

COLLECTION = "chezlepro.sovereign"
FACT = "chezlepro_sovereign_platform"

# uname -s / ansible_system, lower-cased -> GOOS
SYSTEMS = {"linux": "linux"}
# uname -m / ansible_architecture -> GOARCH. Named explicitly: a guess here
# would upload a binary that cannot run.
ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}


class DispatchError(Exception):
    """The target's platform is unknown or not shipped; the message says which."""


def platform_from(system, machine):
    """Map uname's system and machine to the binary suffix, or raise."""
    goos = SYSTEMS.get(to_text(system).strip().lower())
    goarch = ARCHES.get(to_text(machine).strip().lower())
    if goos is None or goarch is None:
        raise ValueError("%s/%s" % (to_text(system).strip(), to_text(machine).strip()))
    return "%s_%s" % (goos, goarch)


class GoModuleAction(ActionBase):
    """Runs the binary of MODULE built for the target's platform."""

    # Set by the per-module subclass.
    MODULE = None

    def _shipped_platforms(self):
        loader = self._shared_loader_obj.module_loader
        found = []
        for goos in sorted(set(SYSTEMS.values())):
            for goarch in sorted(set(ARCHES.values())):
                name = "%s.%s_%s_%s" % (COLLECTION, self.MODULE, goos, goarch)
                if loader.find_plugin(name) is not None:
                    found.append("%s/%s" % (goos, goarch))
        return found

    def _target_platform(self, task_vars):
        """Return (platform, learned): learned is True when a remote command ran."""
        delegated = bool(self._task.delegate_to)
        if not delegated:
            cached = task_vars.get(FACT) or task_vars.get("ansible_facts", {}).get(FACT)
            if cached:
                return to_text(cached), False
            system = task_vars.get("ansible_system") or task_vars.get("ansible_facts", {}).get("system")
            machine = task_vars.get("ansible_architecture") or task_vars.get("ansible_facts", {}).get("architecture")
            if system and machine:
                try:
                    return platform_from(system, machine), False
                except ValueError as e:
                    raise DispatchError(self._unsupported(to_text(e)))
        res = self._low_level_execute_command("uname -sm", sudoable=False)
        if res.get("rc") != 0:
            raise DispatchError(
                "%s.%s: could not learn the target's platform: 'uname -sm' exited %s: %s"
                % (COLLECTION, self.MODULE, res.get("rc"), to_text(res.get("stderr", "")).strip())
            )
        words = to_text(res.get("stdout", "")).split()
        if len(words) != 2:
            raise DispatchError(
                "%s.%s: could not learn the target's platform: 'uname -sm' printed %r"
                % (COLLECTION, self.MODULE, to_text(res.get("stdout", "")))
            )
        try:
            return platform_from(words[0], words[1]), True
        except ValueError as e:
            raise DispatchError(self._unsupported(to_text(e)))

    def _unsupported(self, what):
        shipped = self._shipped_platforms()
        return "%s.%s: the target runs %s, which this collection has no binary for (it ships: %s)" % (
            COLLECTION,
            self.MODULE,
            what,
            ", ".join(shipped) if shipped else "none: run 'make build' before using the collection from a checkout",
        )

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        # As the normal action: whether check mode is honoured is the module's
        # call; async runs through ansible-core's wrapper. ActionBase.__init__
        # resets both, so they are set here, not as class attributes.
        self._supports_check_mode = True
        self._supports_async = True
        result = super(GoModuleAction, self).run(tmp, task_vars)
        del tmp
        if result.get("skipped"):
            return result
        result.pop("invocation", None)

        wrap_async = self._task.async_val and not self._connection.has_native_async
        try:
            platform, learned = self._target_platform(task_vars)
            binary = "%s.%s_%s" % (COLLECTION, self.MODULE, platform)
            if self._shared_loader_obj.module_loader.find_plugin(binary) is None:
                raise DispatchError(self._unsupported(platform.replace("_", "/")))
            display.vvv("%s.%s: running %s for platform %s" % (COLLECTION, self.MODULE, binary, platform))
            result = merge_hash(
                result,
                self._execute_module(module_name=binary, module_args=self._task.args, task_vars=task_vars, wrap_async=wrap_async),
            )
            if learned and not self._task.delegate_to:
                facts = result.setdefault("ansible_facts", {})
                facts[FACT] = platform
        except DispatchError as e:
            # A clean failed result with one clear msg, not a traceback.
            result.update(failed=True, changed=False, msg=to_text(e))
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
