"""Book build time: a cold build (no cache, every lecture executed) and a cached rebuild.

    .venv/bin/python benchmarks/book_build.py            # cold + cached, then per-notebook times
    .venv/bin/python benchmarks/book_build.py --cached   # only report a rebuild and the cache

The cold build deletes ``_build/`` first. Per-notebook execution times come from the
jupyter-cache records that myst-nb writes (``_build/.jupyter_cache``), i.e. the time each
notebook took when it was last executed.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JB = Path(sys.executable).with_name("jupyter-book")


def build() -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([str(JB), "build", str(ROOT), "-n", "-W", "--keep-going"], cwd=ROOT,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n")
        raise SystemExit(f"jupyter-book build failed (exit {proc.returncode})")
    return elapsed


def notebook_times():
    from jupyter_cache import get_cache

    cache = get_cache(str(ROOT / "_build" / ".jupyter_cache"))
    rows = []
    for record in cache.list_cache_records():
        seconds = (record.data or {}).get("execution_seconds")
        rows.append((Path(record.uri).relative_to(ROOT).as_posix(), seconds))
    return sorted(rows, key=lambda r: -(r[1] or 0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cached", action="store_true", help="skip the cold build")
    args = parser.parse_args()
    if not args.cached:
        shutil.rmtree(ROOT / "_build", ignore_errors=True)
        cold = build()
        print(f"cold build (no cache, every notebook executed): {cold:7.1f} s")
    cached = build()
    print(f"cached rebuild (nothing changed):                {cached:7.1f} s")
    print("\nper-notebook execution time (jupyter-cache):")
    total = 0.0
    for uri, seconds in notebook_times():
        total += seconds or 0
        print(f"  {seconds:7.1f} s  {uri}" if seconds is not None else f"     n/a   {uri}")
    print(f"  {total:7.1f} s  total")


if __name__ == "__main__":
    main()
