"""Run every benchmark module (or the ones named) and print its figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import bench


def main(names: list[str]) -> int:
    modules = names or sorted(m.name for m in pkgutil.iter_modules(bench.__path__))
    failed = 0
    for name in modules:
        if name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{name}")
        if not hasattr(module, "run"):
            continue
        print(f"== bench.{name}", flush=True)
        began = time.monotonic()
        try:
            for line in module.run():
                print(f"  {line}", flush=True)
        except Exception:  # noqa: BLE001 - one failing bench is reported, the others still run
            failed += 1
            print(f"  FAILED: {traceback.format_exc().strip()}", flush=True)
        print(f"  ({time.monotonic() - began:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
