"""repository (in progress)."""
