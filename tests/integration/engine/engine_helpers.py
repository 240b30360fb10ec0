"""Transition shim: moved to tests/helpers/engine_cli.py (import it as helpers.engine_cli)."""

from helpers.engine_cli import *  # noqa: F403
