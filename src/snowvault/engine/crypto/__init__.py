"""The one trust boundary: only this package touches ciphers, MACs and KDFs."""
