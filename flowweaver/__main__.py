"""``python -m flowweaver``: the same command as ``flowweaver``."""

from ._cli import main

if __name__ == "__main__":
    main()
