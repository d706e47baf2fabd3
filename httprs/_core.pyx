# cython: language_level=3
"""Bridge between the httpx-shaped API and the C++ core (src/)."""
