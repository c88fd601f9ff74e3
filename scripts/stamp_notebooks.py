"""Stamp the "Open in Colab" badge and the Colab setup cell into every notebook.

The course repository is named in one place only, ``[tool.course]`` in ``pyproject.toml``.
Run this after changing it (or after adding a notebook)::

    python scripts/stamp_notebooks.py            # rewrite every notebook in place
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
SOLUTIONS = NOTEBOOKS / "solutions"
BADGE_PREFIX = "[![Open In Colab]"
SETUP_MARKER = "# Course setup"


def course_settings(pyproject: Path = ROOT / "pyproject.toml") -> tuple[str, str]:
    """The repository URL and branch from ``[tool.course]``."""
    conf = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["course"]
    return conf["repository"].rstrip("/"), conf["branch"]


def notebook_paths() -> list[Path]:
    """Every notebook of the course: the chapters, then their worked solutions."""
    chapters = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    return chapters + sorted(SOLUTIONS.glob("[0-9][0-9]_*_solutions.ipynb"))


def _relative(path: Path | str) -> str:
    """``path`` relative to ``notebooks/``: ``03_custom_datasets.ipynb`` or
    ``solutions/03_custom_datasets_solutions.ipynb``. A bare file name is a chapter in
    ``notebooks/``; any other path is taken as it is (relative to the working directory)."""
    path = Path(path)
    full = NOTEBOOKS / path if len(path.parts) == 1 else path
    return full.resolve().relative_to(NOTEBOOKS.resolve()).as_posix()


def badge_line(path: Path | str) -> str:
    """The Markdown badge that opens the notebook at ``path`` (or a chapter's name) in Colab."""
    repo, branch = course_settings()
    github_path = repo.split("github.com/", 1)[1]
    relative = _relative(path)
    url = (
        f"https://colab.research.google.com/github/{github_path}/blob/{branch}/notebooks/{relative}"
    )
    return f"{BADGE_PREFIX}(https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_cell_source(path: Path | str = "00_environment_check.ipynb") -> str:
    """The first code cell of every notebook: on Colab (only there) it clones the course,
    installs ``helpers`` with its data and moves into the notebook's folder; locally ``make lab``
    has done all that already, and the cell does nothing."""
    repo, branch = course_settings()
    folder = Path("/content/course/notebooks", _relative(path)).parent.as_posix()
    return f'''{SETUP_MARKER} (stamped by scripts/stamp_notebooks.py: edit it there, not here).
# On Google Colab: fetch the course and install it. Locally, `make lab` has done both.
import sys

if "google.colab" in sys.modules:
    REPO = "{repo}"
    !test -d /content/course || git clone -q --depth 1 -b {branch} {{REPO}} /content/course
    !pip install -q -e "/content/course[offline-model,online]"
    sys.path.insert(0, "/content/course")
    %cd {folder}'''


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
    if badges != [badge_line(path)]:
        found.append(f"{path.name}: Colab badge missing or out of date")
    i = _setup_index(nb)
    if i is None:
        found.append(f"{path.name}: no setup cell")
    elif i != 1 or nb.cells[i].source != setup_cell_source(path):
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
    title.source = "\n".join([lines[0], "", badge_line(path), "", *rest]).rstrip()
    i = _setup_index(nb)
    if i is None:
        nb.cells.insert(1, nbformat.v4.new_code_cell(setup_cell_source(path)))
    else:
        cell = nb.cells.pop(i)
        cell.source = setup_cell_source(path)
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
    paths = args.notebooks or notebook_paths()
    if args.check:
        found = [p for path in paths for p in problems(path)]
        print("\n".join(found) or f"{len(paths)} notebooks stamped correctly")
        return 1 if found else 0
    for path in paths:
        print(f"{'stamped  ' if stamp(path) else 'unchanged'} {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
