"""Composition root: builds stores, catalog, services and scheduler from configuration."""
