"""One module per resource type, behind an explicit registry."""
