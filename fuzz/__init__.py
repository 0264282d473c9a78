"""atheris harnesses, one per parser that reads something from outside (see README.md)."""
