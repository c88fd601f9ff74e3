"""Execute the course notebooks top to bottom, headless, and print a table of the results.

    python scripts/run_notebooks.py                  # every notebook, executed copies in build/
    python scripts/run_notebooks.py --inplace 03     # re-execute and save chapter 03 and its
                                                     # solutions (solutions/03_*.ipynb)

``make run`` calls the first form. Maintainers use ``--inplace`` to refresh the outputs that
are committed (nbval compares against them), always from a clean state.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

#: The same quiet, offline settings as ``make test``: no progress bars, no Hub downloads, and the
#: CPU (the saved outputs that nbval compares with come from a CPU run).
QUIET_ENV = {"COURSE_QUIET": "1", "HF_HUB_OFFLINE": "1", "COURSE_DEVICE": "cpu"}


def select(patterns: list[str]) -> list[Path]:
    """Notebooks whose file name starts with one of ``patterns`` (all when none is given): the
    chapters, then their solutions in ``notebooks/solutions/``. ``03`` selects chapter 03 and its
    solutions; ``solutions/`` every solutions notebook."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    paths += sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if patterns:
        relative = {p: p.relative_to(NOTEBOOKS).as_posix() for p in paths}
        paths = [
            p
            for p in paths
            if any(p.name.startswith(pat) or relative[p].startswith(pat) for pat in patterns)
        ]
        if not paths:
            raise SystemExit(f"No notebook in {NOTEBOOKS} starts with {patterns}.")
    return paths


def execute(path: Path, out_path: Path, timeout: int) -> tuple[str, float]:
    """Run one notebook with its own folder as working directory; save it to ``out_path``."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    status = "ok"
    try:
        client.execute()
    except CellExecutionError as err:
        status = "FAILED: " + str(err).strip().splitlines()[-1][:80]
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return status, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="number prefixes, e.g. 03 04 (default: all)")
    parser.add_argument("--inplace", action="store_true", help="save outputs into notebooks/")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "build", help="folder for executed copies"
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    os.environ.update(QUIET_ENV)
    rows = []
    for path in select(args.notebooks):
        target = path if args.inplace else args.out / path.relative_to(NOTEBOOKS)
        print(f"running {path.name} ...", flush=True)
        rows.append((path.name, *execute(path, target, args.timeout)))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for name, status, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {status}")
    print(f"{'total':<{width}}  {sum(r[2] for r in rows):8.1f}")
    return 0 if all(r[1] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
