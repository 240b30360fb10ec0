"""Transition shim: moved to tests/helpers/catalog_db.py (import it as helpers.catalog_db)."""

from helpers.catalog_db import *  # noqa: F403
