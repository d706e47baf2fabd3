"""httprs: a drop-in replacement for httpx on a C++ HTTP/1.1 core."""

__version__ = "0.1.0"
