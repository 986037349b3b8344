"""Blocking twins generated from ``flowweaver._async`` by ``scripts/unasync.py``."""
