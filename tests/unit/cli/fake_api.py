"""Transition shim: moved to tests/helpers/fake_api.py (import it as helpers.fake_api)."""

from helpers.fake_api import *  # noqa: F403
