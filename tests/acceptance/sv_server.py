"""Transition shim: the server helper moved to tests/helpers/sv_server.py (import it from there)."""

from helpers.sv_server import *  # noqa: F403
