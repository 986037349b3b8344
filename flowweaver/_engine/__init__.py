"""The engine: the pure scheduler (decisions) and, around it, what carries them out."""
