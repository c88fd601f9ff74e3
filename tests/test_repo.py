"""The repository itself: one chain of dependency files (requirements.txt -> requirements.lock ->
make and environment.yml), and every notebook built to the course skeleton (stamped badge and
setup cell, recap, exercises, saved outputs)."""

import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import stamp_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))
MAKEFILE = (ROOT / "Makefile").read_text()


def pinned_requirements() -> dict[str, Requirement]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(ln) for ln in lines if ln.strip() and not ln.startswith("#")]
    return {r.name.lower(): r for r in reqs}


def locked_entries() -> list[tuple[Requirement, str]]:
    """Each package line of requirements.lock as a Requirement, with the text of its entry
    (the line and its --hash continuation lines)."""
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[^\s#])", text)
    return [
        (Requirement(e.split("\n", 1)[0].removesuffix("\\").strip()), e)
        for e in entries
        if not e.startswith("#")
    ]


def test_environment_yml_installs_exactly_the_lock_with_the_locks_python():
    # conda must give the same environment as `make`: the lock's Python, then the lock itself
    # (conda writes the pip requirements next to environment.yml, so the relative path works).
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-r requirements.lock"]
    lock_python = re.search(r"^LOCK_PYTHON := (\S+)$", MAKEFILE, flags=re.M).group(1)
    assert "--python-version $(LOCK_PYTHON)" in MAKEFILE
    assert f"python={lock_python}" in env["dependencies"]


def test_every_requirement_is_locked_at_a_version_inside_its_range():
    # requirements.txt is edited by hand, the lock by `make lock`: a stale lock shows up here.
    locked: dict[str, list[str]] = {}
    for req, _ in locked_entries():
        (spec,) = req.specifier
        assert spec.operator == "==", f"{req} is not pinned to one version"
        locked.setdefault(canonicalize_name(req.name), []).append(spec.version)
    for name, req in pinned_requirements().items():
        versions = locked.get(canonicalize_name(name))
        assert versions, f"{name} is in requirements.txt but not in requirements.lock: make lock"
        for v in versions:
            assert req.specifier.contains(v), f"{name}=={v} in the lock is outside {req}: make lock"


def test_every_locked_package_has_a_hash_and_the_lock_says_how_to_refresh_it():
    # `make` installs with --require-hashes: a package without a hash would stop the install.
    for req, entry in locked_entries():
        assert "--hash=sha256:" in entry, f"{req.name} has no hash in requirements.lock"
    header = (ROOT / "requirements.lock").read_text().split("\n", 3)[:2]
    assert header[1].strip("# ") == "make lock", "generate requirements.lock with `make lock`"


def test_the_minimum_python_is_the_same_everywhere():
    # tomllib and friends need 3.11: the package metadata, make's check and notebook 00 agree.
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"
    minimum = "({}, {})".format(*requires.removeprefix(">=").split("."))
    assert f"sys.version_info >= {minimum}" in MAKEFILE
    nb = nbformat.read(ROOT / "notebooks" / "00_environment_check.ipynb", as_version=4)
    assert any(f"MIN_PYTHON = {minimum}" in c.source for c in nb.cells if c.cell_type == "code")


def test_package_metadata_has_loose_lower_bounds_within_the_pinned_ranges():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = pinned_requirements()
    for line in meta:
        req = Requirement(line)
        assert req.name.lower() in pinned, f"{req.name} is in pyproject.toml but not pinned"
        ops = {spec.operator for spec in req.specifier}
        assert ops == {">="}, f"{line}: package metadata must only give a lower bound (Colab)"
        lower = Version(next(iter(req.specifier)).version)
        pinned_lower = min(
            Version(s.version) for s in pinned[req.name.lower()].specifier if s.operator == ">="
        )
        assert lower <= pinned_lower, f"{line} is stricter than requirements.txt"


def test_torch_is_pinned_to_a_release_that_has_a_matching_torchvision():
    pinned = pinned_requirements()
    assert pinned["torch"].specifier.contains("2.14.1")
    assert not pinned["torch"].specifier.contains("2.13.0")
    assert pinned["torchvision"].specifier.contains("0.29.2")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_notebook_badge_and_setup_cell_match_pyproject(path):
    assert stamp_notebooks.problems(path) == []


def test_the_setup_cell_is_a_few_readable_lines():
    # It is the first code a learner reads in every chapter: short, and no line so long that
    # JupyterLab shows a horizontal scroll bar.
    lines = stamp_notebooks.setup_cell_source().splitlines()
    assert len(lines) <= 12
    assert max(len(line) for line in lines) <= 100


def test_a_solutions_notebook_is_stamped_for_its_own_folder(monkeypatch):
    # The same file named two ways (absolute, and relative to the repository) gets one badge,
    # and on Colab its setup cell moves into notebooks/solutions/; a bare name is a chapter.
    monkeypatch.chdir(ROOT)
    name = "solutions/03_custom_datasets_solutions.ipynb"
    ways = [ROOT / "notebooks" / name, Path("notebooks") / name]
    badges = {stamp_notebooks.badge_line(way) for way in ways}
    assert len(badges) == 1 and f"/blob/main/notebooks/{name})" in badges.pop()
    setup = stamp_notebooks.setup_cell_source(ways[1])
    assert setup.endswith("%cd /content/course/notebooks/solutions")
    assert stamp_notebooks.setup_cell_source("03_x.ipynb").endswith("%cd /content/course/notebooks")


def test_jupyterlab_starts_without_the_news_pop_up():
    assert "apputils-extension:announcements" in MAKEFILE


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


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_has_worked_solutions_that_check_themselves(path):
    # notebooks/solutions/NN_topic_solutions.ipynb: a title that links back to the chapter, one
    # section per exercise, each solution asserting its own result; the chapter's exercises
    # link to it.
    solutions = ROOT / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solutions.exists(), f"{path.name} has no worked solutions: write {solutions.name}"
    chapter = nbformat.read(path, as_version=4)
    exercises = "\n".join(c.source for c in chapter.cells if c.cell_type == "markdown")
    exercises = exercises.split("\n## Exercises", 1)[1]
    assert f"solutions/{solutions.name}" in exercises, "the exercises link to their solutions"
    nb = nbformat.read(solutions, as_version=4)
    title = nb.cells[0].source
    assert re.match(r"# \d\d · Solutions", title), "title cell must start '# NN · Solutions'"
    assert f"../{path.name}" in title, "the title cell links back to the chapter"
    n_exercises = len(re.findall(r"^\d+\. ", exercises, flags=re.M))
    sections = [c for c in nb.cells if c.cell_type == "markdown" and "## Exercise " in c.source]
    assert len(sections) == n_exercises, "one '## Exercise k' section per exercise"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count("assert ") >= n_exercises, "every solution checks itself with an assert"


def test_readme_lists_every_notebook_with_a_colab_link():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in readme, f"README's table misses {path.name}"
        assert stamp_notebooks.badge_line(path).split("](", 2)[-1].rstrip(")") in readme
    for path in SOLUTIONS:
        assert f"notebooks/solutions/{path.name}" in readme, f"README's table misses {path.name}"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_ci_compares_the_notebooks_under_foreign_numeric_profiles():
    # Outputs must hold on every CPU, so CI runs the notebooks with other kernels and other
    # thread counts than the machine that saved them (CONTRIBUTING.md, "Outputs that hold on
    # every machine"); an output that depends on float rounding then fails in CI.
    ci = (ROOT / ".ci" / "run").read_text()
    profile = re.search(r"^make test NB_PROFILE=(\w+)$", ci, flags=re.M)
    assert profile and profile.group(1) != "native", "CI must run `make test NB_PROFILE=<foreign>`"
    makefile = (ROOT / "Makefile").read_text()
    profiles = dict(re.findall(r"^PROFILE_(\w+)\s*:=(.*)$", makefile, flags=re.M))
    assert set(profiles) >= {"native", "avx", "avx2"}
    for name, settings in profiles.items():
        for variable in (
            "ATEN_CPU_CAPABILITY=",
            "ONEDNN_MAX_CPU_ISA=",
            "MKL_CBWR=",
            "OMP_NUM_THREADS=",
        ):
            assert (variable in settings) == (name != "native"), f"PROFILE_{name}: {variable}"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_every_nbval_marker_is_one_nbval_recognises(path):
    # nbval only obeys a comment that is exactly the marker: "# NBVAL_IGNORE_OUTPUT  (why)"
    # is silently ignored, and the cell is compared after all. Put the reason on its own line.
    from nbval.plugin import comment_markers, find_comment_markers

    nb = nbformat.read(path, as_version=4)
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        written = [ln for ln in cell.source.splitlines() if re.match(r"\s*#.*NBVAL_", ln)]
        obeyed = list(find_comment_markers(cell.source))
        assert len(obeyed) == len(written), (
            f"nbval ignores {written!r}: write the marker alone on its line, "
            f"one of {sorted(comment_markers)}"
        )
