"""Use cases: the only code that combines catalog, engine and plugins."""
