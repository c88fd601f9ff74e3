"""The rule for outputs that hold on every machine (CONTRIBUTING.md, "Outputs that hold on every
machine"), checked on the saved notebooks.

`make test` compares every saved output with a fresh run, on the learner's own CPU. Training
rounds differently on other instruction sets and thread counts, and a network's trajectory
amplifies those last-digit differences, so a figure measured on a trained model is never
compared: it is shown in a cell marked `# NBVAL_IGNORE_OUTPUT` and asserted, with a tolerance,
in the next cell. These tests find the cells that train or evaluate a model and fail when one of
them is compared and prints a measured figure.

The real proof is `make test-portable`, which runs the notebooks under another numeric profile;
this guard catches the common mistake without running anything.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))

#: Calls that train or evaluate a model. A function defined in a notebook that calls one of them
#: (directly or through another such function) counts too.
TRAINING_CALLS = {"backward", "fit", "train_one_epoch", "evaluate", "predict"}
#: ``trainer.train()`` and ``trainer.evaluate()`` of the Hugging Face Trainer: ``train`` and
#: ``evaluate`` called on an object whose name ends in "trainer".
TRAINER_METHODS = {"train", "evaluate", "predict"}

#: Notebooks whose models are convex fits of a handful of weights (logistic and linear
#: regression). Their optimum is unique and every step shrinks rounding differences instead of
#: amplifying them, so their figures agree to four decimals on every machine.
CONVEX_NOTEBOOKS = {
    "01_hello_pytorch.ipynb",
    "02_linear_regression.ipynb",
    "01_hello_pytorch_solutions.ipynb",
    "02_linear_regression_solutions.ipynb",
}

#: A measured figure: a number with two or more decimals ("0.96") or a percentage ("95%").
FIGURE = re.compile(r"\d+(?:\.\d+)?%|\d+\.\d{2,}")


def code_of(cell) -> str:
    """A cell's source without IPython magics and shell lines, so that ``ast`` can parse it."""
    lines = cell.source.splitlines()
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass"
        if line.lstrip().startswith(("%", "!"))
        else line
        for line in lines
    )


def called_names(node: ast.AST) -> set[str]:
    """Names of the functions and methods called anywhere below ``node``."""
    names = set()
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        func = call.func
        if isinstance(func, ast.Name):
            names.add(func.id)
        elif isinstance(func, ast.Attribute):
            names.add(func.attr)
            owner = func.value
            if (
                func.attr in TRAINER_METHODS
                and isinstance(owner, ast.Name)
                and owner.id.lower().endswith("trainer")
            ):
                names.add("trainer." + func.attr)
    return names


def training_functions(trees: list[ast.Module]) -> set[str]:
    """Every name that trains or evaluates: the library calls, plus the notebook's own functions
    that call one of them, found by repeating until nothing new is added."""
    calls = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                calls[node.name] = called_names(node)
    trains = TRAINING_CALLS | {"trainer." + m for m in TRAINER_METHODS}
    while True:
        new = {name for name, called in calls.items() if name not in trains and called & trains}
        if not new:
            return trains
        trains |= new


def top_level(tree: ast.Module) -> list[ast.stmt]:
    """The statements a cell runs: function and class bodies only run when called."""
    return [
        s
        for s in tree.body
        if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def top_level_calls(tree: ast.Module) -> set[str]:
    """The names of the calls a cell makes when it runs."""
    return set().union(*(called_names(stmt) for stmt in top_level(tree)))


def names_read(tree: ast.Module) -> set[str]:
    """Variables the cell's running code reads."""
    return {
        n.id
        for stmt in top_level(tree)
        for n in ast.walk(stmt)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def names_written(tree: ast.Module, trains: set[str]) -> set[str]:
    """Variables the cell's running code assigns, plus the model (the first argument) of every
    training call, since training changes it in place."""
    written = set()
    for stmt in top_level(tree):
        for node in ast.walk(stmt):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.NamedExpr)):
                targets = [node.target]
            written |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    for call in (n for stmt in top_level(tree) for n in ast.walk(stmt) if isinstance(n, ast.Call)):
        if called_names(call) & trains and call.args and isinstance(call.args[0], ast.Name):
            written.add(call.args[0].id)
    return written


def compared_text(cell) -> str:
    """The text of a cell's outputs that nbval compares (images are not compared)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data"):
            parts.append(output.data.get("text/plain", ""))
            parts.append(output.data.get("text/html", ""))
    return "\n".join(parts)


def is_ignored(cell) -> bool:
    return any(
        line.strip() in ("# NBVAL_IGNORE_OUTPUT", "# NBVAL_SKIP")
        for line in cell.source.splitlines()
    )


def compared_training_figures(path: Path) -> list[str]:
    """One line per compared cell that prints a figure measured on a trained model: a cell that
    trains or evaluates, or that reads a variable such a cell (or a cell after it) wrote."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    trees = [ast.parse(code_of(c)) for c in code]
    trains = training_functions(trees)
    trained = set()  # variables that hold a trained model or something measured on one
    problems = []
    for index, (cell, tree) in enumerate(zip(code, trees)):
        reasons = (top_level_calls(tree) & trains) | (names_read(tree) & trained)
        if reasons:
            trained |= names_written(tree, trains)
        figures = FIGURE.findall(compared_text(cell))
        if reasons and figures and not is_ignored(cell):
            problems.append(
                f"Cell {index} ({', '.join(sorted(reasons)[:4])}) prints "
                f"{len(figures)} figures, e.g. {figures[:3]}"
            )
    return problems


@pytest.mark.parametrize(
    "path",
    [p for p in NOTEBOOKS + SOLUTIONS if p.name not in CONVEX_NOTEBOOKS],
    ids=lambda p: p.name,
)
def test_no_compared_output_of_a_training_cell_prints_a_measured_figure(path):
    problems = compared_training_figures(path)
    assert not problems, (
        "These cells train or evaluate a model and their compared output prints measured "
        "figures, which change on another CPU:\n  " + "\n  ".join(problems) + "\nShow the figures "
        "in a cell marked '# NBVAL_IGNORE_OUTPUT' and assert them, with a tolerance, in the next "
        "cell (CONTRIBUTING.md, 'Outputs that hold on every machine')."
    )


def test_the_guard_finds_a_compared_training_figure(tmp_path):
    # A notebook function that calls fit() trains; its figure in a compared cell is reported,
    # the same cell marked NBVAL_IGNORE_OUTPUT is not, and a figure of a cell that does not
    # train (a data statistic) is left alone.
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("def run(model):\n    return fit(model, loader)"),
        nbformat.v4.new_code_cell("history = run(model)\nprint(history)"),
        nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nhistory = run(model)\nprint(history)"),
        nbformat.v4.new_code_cell("print(data.mean())"),
    ]
    for cell in nb.cells[1:]:
        cell.outputs = [nbformat.v4.new_output("stream", text="val accuracy 0.955\n")]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert compared_training_figures(path) == ["Cell 1 (run) prints 1 figures, e.g. ['0.955']"]
