"""Code with I/O, written once as async: the source of truth for ``flowweaver._sync``."""
