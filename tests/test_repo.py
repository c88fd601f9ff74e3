"""The repository itself: one source of truth for dependencies, and every notebook built to
the course skeleton (stamped badge and setup cell, recap, exercises, saved outputs)."""

import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import stamp_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def pinned_requirements() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(l) for l in lines if l.strip() and not l.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def test_environment_yml_installs_exactly_requirements_txt():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {Requirement(r).name.lower(): str(Requirement(r)) for r in pip_section}
    assert conda_pins == {name: str(r) for name, r in pinned_requirements().items()}


def test_package_metadata_has_loose_lower_bounds_within_the_pinned_ranges():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = pinned_requirements()
    for line in meta:
        req = Requirement(line)
        assert req.name.lower() in pinned, f"{req.name} is in pyproject.toml but not pinned"
        ops = {spec.operator for spec in req.specifier}
        assert ops == {">="}, f"{line}: package metadata must only give a lower bound (Colab)"
        lower = Version(next(iter(req.specifier)).version)
        pinned_lower = min(Version(s.version) for s in pinned[req.name.lower()].specifier
                           if s.operator == ">=")
        assert lower <= pinned_lower, f"{line} is stricter than requirements.txt"


def test_torch_is_pinned_to_a_release_that_has_a_matching_torchvision():
    pinned = pinned_requirements()
    assert pinned["torch"].specifier.contains("2.14.1")
    assert not pinned["torch"].specifier.contains("2.13.0")
    assert pinned["torchvision"].specifier.contains("0.29.2")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_badge_and_setup_cell_match_pyproject(path):
    assert stamp_notebooks.problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_course_skeleton(path):
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert re.match(r"# \d\d · \S", nb.cells[0].source), "title cell must start '# NN · Title'"
    assert "goals" in nb.cells[0].source.lower(), "the title cell lists the learning goals"
    assert "\n## Recap" in markdown
    exercises = markdown.split("\n## Exercises", 1)
    assert len(exercises) == 2, "an '## Exercises' section is missing"
    n_exercises = len(re.findall(r"^\d+\. ", exercises[1], flags=re.M))
    assert 3 <= n_exercises <= 5, f"{n_exercises} exercises; the course asks for 3 to 5"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_saved_with_the_outputs_of_a_clean_run(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.execution_count for c in code]
    assert None not in counts, "some code cells were never executed"
    assert counts == list(range(1, len(code) + 1)), "re-run the notebook top to bottom"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    ignored = sum("NBVAL_IGNORE_OUTPUT" in c.source or "NBVAL_SKIP" in c.source for c in code)
    assert ignored <= len(code) // 3, "too many cells skip the nbval comparison"


def test_readme_lists_every_notebook_with_a_colab_link():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's table misses {path.name}"
        assert stamp_notebooks.badge_line(path.name).split("](", 2)[-1].rstrip(")") in readme


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_nbval_marker_is_one_nbval_recognises(path):
    # nbval only obeys a comment that is exactly the marker: "# NBVAL_IGNORE_OUTPUT  (why)"
    # is silently ignored, and the cell is compared after all. Put the reason on its own line.
    from nbval.plugin import comment_markers, find_comment_markers

    nb = nbformat.read(path, as_version=4)
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        written = [l for l in cell.source.splitlines() if re.match(r"\s*#.*NBVAL_", l)]
        obeyed = list(find_comment_markers(cell.source))
        assert len(obeyed) == len(written), (
            f"nbval ignores {written!r}: write the marker alone on its line, "
            f"one of {sorted(comment_markers)}")
