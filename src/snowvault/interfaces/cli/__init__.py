"""The snowvault command line."""
