# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""The one argument spec of each Go module: its sidecar documentation.

plugins/modules/NAME.yml documents every option (type, elements, default,
choices, required, suboptions; which options are no_log is below, as the
documentation format has no key for it). The action plugin checks the task's
arguments against exactly that, on the controller, with ansible-core's own
validator (the one AnsibleModule and the validate_argument_spec action use),
before any binary runs: ad-hoc calls and check mode included. The binary then
receives the validated arguments, defaults applied, and decodes them strictly.
Nothing but this file and the sidecar declares an option.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.common.validation import check_type_str
from ansible.module_utils.errors import ArgumentTypeError, UnsupportedError

# What the sidecar's format has no key for, per module: option groups, and the
# dict options whose suboption defaults apply when the dict is not given (the
# hardening of a unit is on unless relaxed).
GROUPS = {
    "binary_stage": {
        "mutually_exclusive": [["src", "url"]],
        "required_one_of": [["src", "url", "manifest"]],
    },
    "bluegreen_unit": {"mutually_exclusive": [["active", "action"]]},
    "source_build": {},
}
APPLY_DEFAULTS = {"bluegreen_unit": ["hardening"]}
# The options whose values are secrets, masked in results and logs. no_log is
# an argument spec key that the documentation format does not take
# (ansible-test's validate-modules rejects it in a sidecar), so it lives here.
NO_LOG = {"source_build": ["keyring", "env"]}

# The key under which the binary receives the no_log values to mask in all it
# prints (it holds no spec of its own to find them).
NO_LOG_VALUES_KEY = "_chezlepro_no_log_values"

# The keys of an option's documentation that are also argument spec keys.
SPEC_KEYS = ("type", "elements", "default", "choices", "required", "aliases", "no_log")

# libyaml's loader where PyYAML has it: the pure-Python one takes ten times
# as long (46 ms against 4.5 for bluegreen_unit's sidecar, measured).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SIDECARS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "modules")


class ArgumentsError(Exception):
    """The task's arguments do not match the module's options; the message lists every problem."""


def path(value):
    """Type path, checked here and expanded by the binary on the target: ~ and $HOME are the target's."""
    return check_type_str(value, allow_conversion=True)


def _spec(options, apply_defaults=()):
    spec = {}
    for name, doc in options.items():
        option = dict((k, doc[k]) for k in SPEC_KEYS if k in doc)
        for key in ("type", "elements"):
            if option.get(key) == "path":
                option[key] = path
        if "suboptions" in doc:
            option["options"] = _spec(doc["suboptions"])
            option["apply_defaults"] = name in apply_defaults
        spec[name] = option
    return spec


def argument_spec(module):
    """The argument spec of MODULE, from plugins/modules/MODULE.yml."""
    with open(os.path.join(SIDECARS, module + ".yml")) as f:
        doc = yaml.load(f, Loader=_LOADER)["DOCUMENTATION"]
    spec = _spec(doc.get("options") or {}, APPLY_DEFAULTS.get(module, ()))
    for name in NO_LOG.get(module, ()):
        spec[name]["no_log"] = True
    return spec


_VALIDATORS = {}


def _validator(module):
    if module not in _VALIDATORS:
        _VALIDATORS[module] = ArgumentSpecValidator(argument_spec(module), **GROUPS.get(module, {}))
    return _VALIDATORS[module]


def preload(module):
    """Build MODULE's validator now. Called when its action plugin is imported,
    which ansible-playbook does in its main process before forking a worker
    for each task: the workers inherit the validator instead of each reading
    the sidecar again. A sidecar that cannot be read is left for validate()
    to report, at task time."""
    try:
        _validator(module)
    except Exception:  # pylint: disable=broad-except
        pass


_TYPE_ERROR = re.compile(
    r"^argument '(?P<param>[^']+)' is of type (?P<class><class '[\w.]+'>|\w+)(?P<where> found in '(?P<path>[^']*)'\.)?"
    r" and we were unable to convert to (?P<want>\w+): (?P<why>.*)$",
    re.S,
)


_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (dict, "dict"), (list, "list"), (type(None), "None"))
_PLAIN = {"bool": bool, "int": int, "float": float, "str": str}
# The classes of ansible-core's YAML values, by their plain names.
_CLASSES = {"AnsibleUnicode": "str", "AnsibleSequence": "list", "AnsibleMapping": "dict", "NoneType": "None"}
_UNKNOWN = object()


def _given(args, path_, param):
    """The value the task gave for param under the options path ('a -> b'), or _UNKNOWN."""
    node = args
    for part in (path_.split(" -> ") if path_ else []) + [param]:
        if not isinstance(node, dict) or part not in node:
            return _UNKNOWN
        node = node[part]
    return node


def _type_message(args, msg):
    """ansible-core 2.14 names a Python class where the value says more:
    "argument 'status' is of type <class 'AnsibleUnicode'> found in 'health'. and we were
    unable to convert to int: <class 'AnsibleUnicode'> cannot be converted to an int" becomes
    "argument 'health.status' is of type str and we were unable to convert to int: 'x' cannot
    be converted to an int". ansible-core 2.19 names the type but quotes the value twice
    (\"'x'\"): the same text comes out."""
    m = _TYPE_ERROR.match(msg)
    if not m:
        return msg
    value = _given(args, m.group("path"), m.group("param"))
    cls = m.group("class")
    if value is _UNKNOWN:  # inside a list: the message does not say which element
        name = cls[len("<class '"):-len("'>")].rsplit(".", 1)[-1] if cls.startswith("<class") else cls
        kind, shown = _CLASSES.get(name, name), _CLASSES.get(name, name)
    else:
        kind = next((n for t, n in _KINDS if isinstance(value, t)), type(value).__name__)
        shown = repr(_PLAIN[kind](value)) if kind in _PLAIN else kind
    if cls.startswith("<class"):
        why = m.group("why").replace(cls, shown)
    else:  # 2.19 names the type already, and shows the value's repr in double quotes
        why = re.sub(r"^\"('.*')\"(?= cannot be converted)", r"\1", m.group("why"), flags=re.S)
    param = ".".join((m.group("path").split(" -> ") if m.group("path") else []) + [m.group("param")])
    return "argument '%s' is of type %s and we were unable to convert to %s: %s" % (param, kind, m.group("want"), why)


def validate(module, args):
    """Return MODULE's validated arguments (defaults applied, values converted),
    with the no_log values under NO_LOG_VALUES_KEY; raise ArgumentsError naming
    every problem, as AnsibleModule words each one."""
    result = _validator(module).validate(args)
    messages = []
    for error in result.errors.errors:
        msg = to_native(error)
        if isinstance(error, UnsupportedError):
            msg = "Unsupported parameters for (%s) module: %s" % (module, msg)
        elif isinstance(error, ArgumentTypeError):
            msg = _type_message(args, msg)
        messages.append(msg)
    if messages:
        # The unsupported-parameters message ends a sentence; the others do not.
        text = messages[0]
        for prev, msg in zip(messages, messages[1:]):
            text += (" " if prev.endswith(".") else "; ") + msg
        raise ArgumentsError(text)
    params = dict(result.validated_parameters)
    if result._no_log_values:
        params[NO_LOG_VALUES_KEY] = sorted(to_native(v) for v in result._no_log_values)
    return params
