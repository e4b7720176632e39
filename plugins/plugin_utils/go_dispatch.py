# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Architecture dispatch for the collection's Go modules.

Each module ships as one static binary per platform, named
``<module>_<system>_<arch>`` in the collection's bin/ (outside plugins/modules/,
where ansible-doc and ansible-test would take them for modules). Playbooks call the
module by its plain FQCN; this action plugin finds the target's platform and
runs the matching binary with ansible-core's own module arguments, become and
environment, so check mode, diff mode, become, no_log, environment and async
behave exactly as for any other module. The binary runs from a cache on the
target (module_cache.py): uploaded once per host and user, then each task
sends only its arguments; async tasks, and hosts where the cache cannot be
used, get ansible-core's plain upload.

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

import json
import os

from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash
from ansible.vars.clean import remove_internal_keys
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.chezlepro.sovereign.plugins.plugin_utils import module_cache
from ansible_collections.chezlepro.sovereign.plugins.plugin_utils.argument_spec import ArgumentsError, preload, validate

try:  # ansible-core 2.19+: module arguments and results go through serialization profiles
    from ansible.module_utils.common.json import Direction, get_module_encoder
except ImportError:  # 2.14-2.18: plain JSON
    Direction = get_module_encoder = None

# The profile ansible-core 2.19 gives binary modules.
_PROFILE = "legacy"

display = Display()

COLLECTION = "chezlepro.sovereign"
# <collection>/bin, from <collection>/plugins/plugin_utils/go_dispatch.py.
BIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bin")
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


def _noexec_tmp(result):
    """True when the shell could not execute the uploaded binary for lack of permission."""
    text = " ".join(to_text(result.get(k, "")) for k in ("module_stderr", "module_stdout", "msg"))
    return bool(result.get("failed")) and result.get("rc") == 126 and "Permission denied" in text


def _exec_format_error(result):
    """True when the target's kernel refused the binary as not its own."""
    # The shell says it on stderr, which a tty (ssh -tt) merges into stdout.
    text = " ".join(to_text(result.get(k, "")) for k in ("module_stderr", "module_stdout", "msg"))
    return bool(result.get("failed")) and "Exec format error" in text


class GoModuleAction(ActionBase):
    """Runs the binary of MODULE built for the target's platform."""

    # Set by the per-module subclass.
    MODULE = None

    def __init_subclass__(cls, **kwargs):
        # The subclass is defined when ansible-playbook's main process imports
        # it, before it forks the task's worker: the argument spec read now
        # is read once per run, not once per task (~90 ms of the worker's
        # CPU each time, seen with ANSIBLE_DEBUG).
        super().__init_subclass__(**kwargs)
        if cls.MODULE:
            preload(cls.MODULE)

    def _binary(self, platform):
        """The binary's file name and path for platform (GOOS_GOARCH)."""
        name = "%s_%s" % (self.MODULE, platform)
        return name, os.path.join(BIN_DIR, name)

    def _shipped_platforms(self):
        found = []
        for goos in sorted(set(SYSTEMS.values())):
            for goarch in sorted(set(ARCHES.values())):
                if os.path.isfile(self._binary("%s_%s" % (goos, goarch))[1]):
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
        binary, path = self._binary(platform)
        if not os.path.isfile(path):
            raise DispatchError(self._unsupported(platform.replace("_", "/")))
        display.vvv("%s.%s: running %s for platform %s" % (COLLECTION, self.MODULE, path, platform))
        if not wrap_async:
            ran = self._run_cached(binary, path, self._module_args, task_vars)
            if ran is not None:
                return ran
        # ansible-core's plain upload finds the binary by name in bin/, added
        # to this worker's module search path only.
        self._shared_loader_obj.module_loader.add_directory(BIN_DIR)
        ran = self._execute_module(module_name=binary, module_args=self._module_args, task_vars=task_vars, wrap_async=wrap_async)
        if _noexec_tmp(ran):
            ran["msg"] = (
                "%s.%s: the target could not execute the module uploaded to its remote tmp dir (Permission denied: "
                "mounted noexec?). Set ansible_remote_tmp to a directory where files can be executed, or let the "
                "module cache (%s) run it from a directory that allows it. %s"
                % (COLLECTION, self.MODULE, module_cache.SETTING, to_text(ran.get("msg", "")))
            )
        return ran

    def _cache_usable_here(self):
        """Whether the arguments can travel on stdin, as with pipelining."""
        become = self._connection.become
        return (
            self._connection.has_pipelining
            # su reads its password from the terminal, not stdin (ansible-core's own exception).
            and (become.name if become else "") != "su"
            and not getattr(self._connection, "always_pipeline_modules", False)
        )

    def _run_cached(self, binary, path, module_args, task_vars):
        """Run binary from the target's module cache; None when the cache is off or unusable."""
        directory = module_cache.cache_dir(self._templar.template(task_vars.get(module_cache.SETTING)))
        if directory is None or not self._cache_usable_here():
            return None
        sha256, size = module_cache.binary_sha256(path), os.path.getsize(path)
        args = dict(module_args)
        self._update_module_args(binary, args, task_vars)
        env = self._compute_environment_string()
        encoder = get_module_encoder(_PROFILE, Direction.CONTROLLER_TO_MODULE) if get_module_encoder else None
        args_line = to_bytes(json.dumps(args, cls=encoder)) + b"\n"

        res = self._low_level_execute_command(module_cache.hit_command(directory, sha256, size, env), in_data=args_line)
        kind, reason = module_cache.marker(to_text(res.get("stdout", "")))
        if kind == module_cache.MISS:
            display.vvv("%s.%s: %s is not in the module cache %s yet: uploading it once" % (COLLECTION, self.MODULE, binary, directory))
            with open(path, "rb") as f:
                res = self._low_level_execute_command(module_cache.install_command(directory, sha256, env=env), in_data=args_line + f.read())
            kind, reason = module_cache.marker(to_text(res.get("stdout", "")))
        if kind == module_cache.UNUSABLE:
            # The same text for every task and host: ansible prints it once.
            self._cache_warning = (
                "%s: the module cache %s cannot be used on this host (%s); modules are uploaded with every task "
                "instead. Set %s to a directory the remote user can write and execute in, or to false."
                % (COLLECTION, directory, reason, module_cache.SETTING)
            )
            return None
        data = self._parse_returned_data(res, _PROFILE) if get_module_encoder else self._parse_returned_data(res)
        data.pop("_ansible_suppress_tmpdir_delete", None)
        remove_internal_keys(data)
        return wrap_var(data)

    def run(self, tmp=None, task_vars=None):
        if task_vars is None:
            task_vars = {}
        # As the normal action: whether check mode is honoured is the module's
        # call; async runs through ansible-core's wrapper. ActionBase.__init__
        # resets both, so they are set here, not as class attributes.
        self._supports_check_mode = True
        self._supports_async = True
        # Why the module cache could not be used on this host, once known.
        self._cache_warning = None
        result = super(GoModuleAction, self).run(tmp, task_vars)
        del tmp
        if result.get("skipped"):
            return result
        result.pop("invocation", None)

        wrap_async = self._task.async_val and not self._connection.has_native_async
        try:
            # The sidecar is the argument spec: checked here, before anything runs remotely.
            self._module_args = validate(self.MODULE, self._task.args)
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
            if self._cache_warning:
                ran.setdefault("warnings", []).append(self._cache_warning)
            result = merge_hash(result, ran)
            if learned and not self._task.delegate_to:
                facts = result.setdefault("ansible_facts", {})
                facts[FACT] = platform
        except (ArgumentsError, DispatchError, module_cache.SettingError) as e:
            # A clean failed result with one clear msg, not a traceback.
            result.update(failed=True, changed=False, msg=to_text(e))
        finally:
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
