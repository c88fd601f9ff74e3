"""Stamp the "Open in Colab" badge and the Colab setup cell into every notebook.

The course repository is named in one place only, ``[tool.course]`` in ``pyproject.toml``.
Run this after changing it (or after adding a notebook)::

    python scripts/stamp_notebooks.py            # rewrite notebooks/*.ipynb in place
    python scripts/stamp_notebooks.py --check    # exit 1 if any notebook disagrees

``tests/test_repo.py`` runs the check, so a stale badge or setup cell fails the tests.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BADGE_PREFIX = "[![Open In Colab]"
SETUP_MARKER = "# Course setup"


def course_settings(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, str]:
    """The repository URL and branch from ``[tool.course]``."""
    conf = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["course"]
    return conf["repository"].rstrip("/"), conf["branch"]


def badge_line(notebook_name: str) -> str:
    """The Markdown badge that opens ``notebooks/<notebook_name>`` in Colab."""
    repo, branch = course_settings()
    github_path = repo.split("github.com/", 1)[1]
    url = f"https://colab.research.google.com/github/{github_path}/blob/{branch}/notebooks/{notebook_name}"
    return f"{BADGE_PREFIX}(https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_cell_source() -> str:
    """The first code cell of every notebook: on Colab (only there) it clones the course and
    installs ``helpers`` with its data; locally ``make lab`` has done that already."""
    repo, branch = course_settings()
    return f'''{SETUP_MARKER} (stamped by scripts/stamp_notebooks.py: edit it there, not here).
# On Google Colab this clones the course and installs `helpers`; locally, `make lab` already did.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    COURSE_DIR = "/content/course"
    if not os.path.isdir(COURSE_DIR):
        subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", "{branch}",
                        "{repo}", COURSE_DIR], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e",
                        COURSE_DIR + "[offline-model,online]"], check=True)
    sys.path.insert(0, COURSE_DIR)
    os.chdir(COURSE_DIR + "/notebooks")'''


def _setup_index(nb) -> int | None:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.startswith(SETUP_MARKER):
            return i
    return None


def problems(path: Path) -> list[str]:
    """What is wrong with one notebook's badge and setup cell (empty list when all is well)."""
    nb = nbformat.read(path, as_version=4)
    found = []
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        return [f"{path.name}: the first cell must be the Markdown title cell"]
    badges = [ln for ln in nb.cells[0].source.splitlines() if ln.startswith(BADGE_PREFIX)]
    if badges != [badge_line(path.name)]:
        found.append(f"{path.name}: Colab badge missing or out of date")
    i = _setup_index(nb)
    if i is None:
        found.append(f"{path.name}: no setup cell")
    elif i != 1 or nb.cells[i].source != setup_cell_source():
        found.append(f"{path.name}: setup cell is out of date or not the second cell")
    return found


def stamp(path: Path) -> bool:
    """Write the badge and setup cell into one notebook; True if anything changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    title = nb.cells[0]
    lines = [ln for ln in title.source.splitlines() if not ln.startswith(BADGE_PREFIX)]
    rest = lines[1:]
    while rest and not rest[0].strip():
        rest.pop(0)
    title.source = "\n".join([lines[0], "", badge_line(path.name), "", *rest]).rstrip()
    i = _setup_index(nb)
    if i is None:
        nb.cells.insert(1, nbformat.v4.new_code_cell(setup_cell_source()))
    else:
        cell = nb.cells.pop(i)
        cell.source = setup_cell_source()
        nb.cells.insert(1, cell)
    after = nbformat.writes(nb)
    if after != before:
        nbformat.write(nb, path)
    return after != before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report, change nothing")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.check:
        found = [p for path in paths for p in problems(path)]
        print("\n".join(found) or f"{len(paths)} notebooks stamped correctly")
        return 1 if found else 0
    for path in paths:
        print(f"{'stamped  ' if stamp(path) else 'unchanged'} {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
