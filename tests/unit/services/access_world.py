"""Transition shim: moved to tests/helpers/access_world.py (import it as helpers.access_world)."""

from helpers.access_world import *  # noqa: F403
