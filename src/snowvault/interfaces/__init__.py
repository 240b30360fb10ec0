"""Adapters only: API, CLI, console. No business rules."""
