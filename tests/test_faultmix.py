"""A short seeded run of scripts/faultmix.py, so CI keeps the fault mix honest.

The full run (`just faultmix`, 30 s per mode by default) and what it checks are described
in the script; here each mode runs for two seconds with a fixed seed: every request ends
in its exact body or an httpx exception that fits the fault the server applied, no
request hangs, no POST reaches the server twice, the pool has nothing in use afterwards
and the process's descriptors are back to their baseline.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import faultmix  # noqa: E402


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_seeded_fault_mix(mode):
    passed, lines = faultmix.run(seed=20261201, duration=2.0, threads=8, tasks=16, modes=(mode,))
    report = "\n".join(lines)
    assert passed, report
    # the mix really injected faults and really succeeded: both kinds of outcome occur
    assert " ok " in report and "RemoteProtocolError" in report and "ReadTimeout" in report


def test_fault_mix_detects_a_wrong_body(monkeypatch):
    """The checker is not blind: a server that answers with another request's body fails."""
    real = faultmix.response_body

    def swapped(seed, rid):
        return real(seed, rid + 1) if rid % 7 == 0 else real(seed, rid)

    monkeypatch.setattr(faultmix.FaultServer, "_body", staticmethod(swapped))
    passed, lines = faultmix.run(seed=5, duration=1.0, threads=4, tasks=4, modes=("sync",))
    assert not passed
    assert any("WRONG_BODY" in line for line in lines), "\n".join(lines)
