"""restorer (in progress)."""
