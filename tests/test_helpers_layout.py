"""The shape of the helpers package, which learners read as an example of PyTorch code: short
modules, a short `fit`, one place for each mechanism, no module reaching into another's
private names, and a linter that keeps it so."""

import ast
import inspect
import re
from pathlib import Path

import pytest

from helpers.train import fit

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted((ROOT / "helpers").rglob("*.py"))
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_helpers_module_is_short(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.name} has {lines} lines: split it by topic"


def test_fit_takes_at_most_twelve_options_and_its_body_fits_on_a_screen():
    options = [
        p
        for p in inspect.signature(fit).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert len(options) <= 12, [p.name for p in options]
    tree = ast.parse(inspect.getsource(fit))
    body = tree.body[0].body[1:]  # without the docstring
    assert body[-1].end_lineno - body[0].lineno + 1 <= 60


def test_no_module_imports_a_private_name_from_another_module():
    offenders = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
                offenders += [
                    f"{module_name(path)}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    assert not offenders


@pytest.mark.parametrize(
    "pattern, where",
    [
        (r"TOKENIZERS_PARALLELISM", "helpers/bert/__init__.py"),
        (r"def choose_amp\b", "helpers/device.py"),
        (r"def eval_mode\b", "helpers/device.py"),
        (r"def model_device\b", "helpers/device.py"),
        (r"def to_numpy\b", "helpers/tensors.py"),
        (r"DistributedSampler\(", "helpers/train/distributed.py"),
    ],
)
def test_each_mechanism_lives_in_one_place(pattern, where):
    found = [str(p.relative_to(ROOT)) for p in MODULES if re.search(pattern, p.read_text())]
    assert found == [where]


def test_evaluation_loops_use_eval_mode_instead_of_saving_the_mode_by_hand():
    by_hand = [
        str(p.relative_to(ROOT))
        for p in MODULES
        if "was_training" in p.read_text() and p.name != "device.py"
    ]
    assert not by_hand


def test_make_test_runs_the_linter_and_the_formatter_check_first():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: lint ", makefile, re.M)
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert 'ruff" check .' in lint and 'ruff" format --check .' in lint
