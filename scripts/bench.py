#!/usr/bin/env python3
"""The httprs benchmark: `just bench` (or `python scripts/bench.py --help`).

Starts a pinned nginx and the project's C server, prints the machine's own limits
(wrk, a C client) and then every installed client's cost per request, with the ratio
to httpx. The implementation lives in scripts/bench/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
