"""stacklet: boot only the slice of a Docker Compose stack that a change touches."""

__version__ = "0.1.0"
