"""httpx's private `httpx._main` layout: the command-line entry point (not provided)."""

from httprs._api import main

__all__ = ["main"]
