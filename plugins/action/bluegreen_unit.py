# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
"""Runs chezlepro.sovereign.bluegreen_unit's binary built for the target's platform."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.chezlepro.sovereign.plugins.plugin_utils.go_dispatch import GoModuleAction


class ActionModule(GoModuleAction):
    MODULE = "bluegreen_unit"
