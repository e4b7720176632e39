# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Architecture dispatch for the collection's Go modules.

Each module ships as one static binary per platform, named
``<module>_<system>_<arch>`` under plugins/modules/. Playbooks call the
module by its plain FQCN; this action plugin finds the target's platform and
runs the matching binary through the ordinary module machinery, so check
mode, diff mode, become, no_log, environment and async behave exactly as for
any other module.

The platform comes, in order, from: gathered facts
(``ansible_system``/``ansible_architecture``), the fact this plugin cached
earlier (``chezlepro_sovereign_platform``), or one ``uname -sm`` on the
target. The result of a probe is returned as a fact so later tasks on the
same host need no remote command at all. Gathered facts come first because
they are the freshest: with a fact cache (AWX's fact storage), the cached
platform of a host re-created on another architecture would be stale. A
binary the target cannot execute ("Exec format error": a stale fact cache
with gathering off) makes the plugin probe once with uname and, when uname
names another platform, run that platform's binary and say so.
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


def _exec_format_error(result):
    """True when the target's kernel refused the binary as not its own."""
    # The shell says it on stderr, which a tty (ssh -tt) merges into stdout.
    text = " ".join(to_text(result.get(k, "")) for k in ("module_stderr", "module_stdout", "msg"))
    return bool(result.get("failed")) and "Exec format error" in text


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
        if not self._task.delegate_to:
            facts = task_vars.get("ansible_facts", {})
            system = task_vars.get("ansible_system") or facts.get("system")
            machine = task_vars.get("ansible_architecture") or facts.get("architecture")
            if system and machine:
                try:
                    return platform_from(system, machine), False
                except ValueError as e:
                    raise DispatchError(self._unsupported(to_text(e)))
            cached = task_vars.get(FACT) or facts.get(FACT)
            if cached:
                return to_text(cached), False
        return self._probe_platform(), True

    def _probe_platform(self):
        """One 'uname -sm' on the target."""
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
            return platform_from(words[0], words[1])
        except ValueError as e:
            raise DispatchError(self._unsupported(to_text(e)))

    def _unsupported(self, what):
        shipped = self._shipped_platforms()
        if shipped:
            return "%s.%s: the target runs %s, which this collection has no binary for (it ships: %s)" % (
                COLLECTION,
                self.MODULE,
                what,
                ", ".join(shipped),
            )
        # No binary at all: installed from git (AWX project sync, Semaphore),
        # where nothing can be built; say how to get a copy that has them.
        return (
            "%s.%s: this copy of the collection has no module binaries (it ships: none), so nothing can run on "
            "the target (%s). A copy installed from git (requirements.yml 'type: git', as AWX project sync and "
            "Semaphore do) never has them: install the release tarball instead, built by 'make collection' in a "
            "clone of the collection's repository and published with playbooks/publish.yml, with a requirements.yml "
            "entry 'type: url' pointing at it, or 'ansible-galaxy collection install --offline "
            "chezlepro-sovereign-VERSION.tar.gz'. In a checkout of the repository, run 'make build'. "
            "See the README's section 'AWX, Semaphore, execution environments'."
            % (COLLECTION, self.MODULE, what)
        )

    def _run_binary(self, platform, task_vars, wrap_async):
        binary = "%s.%s_%s" % (COLLECTION, self.MODULE, platform)
        if self._shared_loader_obj.module_loader.find_plugin(binary) is None:
            raise DispatchError(self._unsupported(platform.replace("_", "/")))
        display.vvv("%s.%s: running %s for platform %s" % (COLLECTION, self.MODULE, binary, platform))
        return self._execute_module(module_name=binary, module_args=self._task.args, task_vars=task_vars, wrap_async=wrap_async)

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
            ran = self._run_binary(platform, task_vars, wrap_async)
            if not learned and _exec_format_error(ran):
                # The platform came from facts the target no longer matches.
                probed = self._probe_platform()
                learned = True
                if probed == platform:
                    raise DispatchError(
                        "%s.%s: the target cannot execute the %s binary (Exec format error), and 'uname -sm' "
                        "says %s too: is the binary damaged, or the kernel unable to run it?"
                        % (COLLECTION, self.MODULE, platform.replace("_", "/"), probed.replace("_", "/"))
                    )
                stale = (
                    "%s.%s: the target's facts said %s, but it could not execute that binary (Exec format error); "
                    "'uname -sm' says %s, whose binary ran instead. Refresh the host's cached facts."
                    % (COLLECTION, self.MODULE, platform.replace("_", "/"), probed.replace("_", "/"))
                )
                platform = probed
                ran = self._run_binary(platform, task_vars, wrap_async)
                ran.setdefault("warnings", []).insert(0, stale)
            result = merge_hash(result, ran)
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
