# -*- coding: utf-8 -*-
# WTFPL (see LICENSE)
# chezlepro.sovereign.binary_stage is a Go binary per platform (built by 'make build';
# binary_stage.yml beside this file documents it). Its action plugin,
# plugins/action/binary_stage.py, runs the binary built for the target. This file holds
# no code, as ansible-core's own action-only modules (debug, set_fact): it
# gives the module loader, ansible-doc and ansible-test a module of this name.
