"""Identifiers: random ids for jobs, recovery points and the like, and hex helpers."""

from __future__ import annotations

import secrets
import uuid


def new_uuid() -> str:
    """A random UUID4 string, as AWS uses for job and plan ids."""
    return str(uuid.uuid4())


def new_hex(nbytes: int = 32) -> str:
    """A random lowercase hex string of ``2 * nbytes`` characters."""
    return secrets.token_hex(nbytes)


def short_id(value: str, length: int = 8) -> str:
    """The first ``length`` characters of an id, as shown in human tables."""
    return value[:length]
