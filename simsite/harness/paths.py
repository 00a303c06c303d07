"""Where things are: the repository and the shared SNMP corpus (tests and bench only).

The product never reads ``../shared``; tests and benchmarks find the recordings here, so that
one environment variable moves them for every test and benchmark at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

#: The repository's root (the folder holding core/, services/, simsite/, tests/, bench/).
REPO: Final = Path(__file__).resolve().parents[2]
#: Overrides where the corpus is (a directory of ``*.snmprec`` with ``*.expected.json``).
CORPUS_ENV: Final = "OUTPOST_SNMP_CORPUS"


def corpus_path() -> Path:
    """Where the shared corpus should be: ``$OUTPOST_SNMP_CORPUS``, else
    ``../shared/snmp-corpus`` beside the repository. The folder may be absent."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else REPO.parent / "shared" / "snmp-corpus"


#: The corpus location, fixed at import (what the tests' parametrisations are built from).
CORPUS: Final = corpus_path()


def corpus_dir() -> Path | None:
    """The corpus folder if it exists, else None."""
    path = corpus_path()
    return path if path.is_dir() else None


def corpus_missing_reason(path: Path = CORPUS) -> str | None:
    """None when ``path`` holds recordings; else a sentence saying what is missing and the fix
    (for a test's skip or failure message, or a benchmark's "skipped" line)."""
    if not path.is_dir():
        return (
            f"the shared SNMP corpus is not at {path}: check out ../shared beside the "
            f"repository or point {CORPUS_ENV} at a folder of *.snmprec recordings"
        )
    if not any(path.glob("*.snmprec")):
        return f"the shared SNMP corpus at {path} holds no *.snmprec recordings"
    return None
