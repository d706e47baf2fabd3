"""Test servers for the httprs integration suite (all bound to 127.0.0.1, ephemeral ports)."""
