"""Data plane: repository format, chunking, crypto, stores. Knows nothing of plans, SQL or HTTP."""
