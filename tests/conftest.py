"""Shared fixtures: paths, the outpost command, root detection with a printed skip reason.

The paths and commands come from simsite.harness (bench/ uses the same ones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simsite.harness.paths import CORPUS, REPO
from simsite.harness.processes import OUTPOST

__all__ = ["CORPUS", "IS_ROOT", "OUTPOST", "REPO", "needs_root"]

IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root for network namespaces")


@pytest.fixture
def repo() -> Path:
    return REPO
