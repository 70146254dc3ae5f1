"""Run the deltaprop benchmark and write the measured tables into bench/RESULTS.md.

    python bench/run.py                           # every workload (L, M, S, O): a few minutes on 2 cores
    python bench/run.py --quick                   # a smoke run of small sizes (printed only)
    python bench/run.py --workloads L,M --print-only

The same as ``deltaprop bench`` (``deltaprop.benchmark.main``), except that a full run writes its report into
RESULTS.md beside this file (between the markers, so that the hand-written findings around it stay) and its raw
measurements into results.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from deltaprop.benchmark import main

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    argv = sys.argv[1:]
    print_only = "--print-only" in argv
    argv = [a for a in argv if a != "--print-only"]
    given = {a.split("=", 1)[0] for a in argv}
    if not print_only and "--quick" not in argv:
        if "--output" not in given:
            argv += ["--output", str(HERE / "RESULTS.md")]
        if "--json" not in given:
            argv += ["--json", str(HERE / "results.json")]
    sys.exit(main(argv))
