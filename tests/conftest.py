"""Shared fixtures: paths, the outpost command, root detection with a printed skip reason."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "snmp-corpus"
OUTPOST = [sys.executable, "-m", "firmware"]
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root for network namespaces")


@pytest.fixture
def repo() -> Path:
    return REPO
