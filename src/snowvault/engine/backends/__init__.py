"""Object stores: dumb, documented, one Protocol (see base.py)."""
