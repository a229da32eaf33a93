"""RocketNode: a Matrix federation node for chat servers."""

__version__ = "0.1.0"
