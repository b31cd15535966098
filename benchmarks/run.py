"""Run every benchmark (`benchmarks/bench_*.py`, each with a `main()`), or those named on the command line.

Benchmarks print ratios against a reference measured in the same run, never pass/fail times:
absolute seconds depend on the machine, a ratio much less so.
"""
import importlib.util
import sys
import time
from pathlib import Path

here = Path(__file__).resolve().parent
names = sys.argv[1:]
for path in sorted(here.glob("bench_*.py")):
    if names and not any(name in path.stem for name in names): continue
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    print(f"\n=== {path.stem}")
    start = time.perf_counter()
    module.main()
    print(f"--- {path.stem}: {time.perf_counter() - start:.1f} s")
