"""Core: errors, clock, ids and ARNs. Depends on nothing else in snowvault."""
