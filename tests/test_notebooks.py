"""The notebooks as a project: papermill parameters survive nbdev-clean, and the library reads like its notebooks."""
import importlib
import inspect
import json
import re
from pathlib import Path

import papermill
import pytest

from datasum.reproduce import figure_notebooks, has_parameters

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "nbs").glob("[0-9][0-9]*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figure_notebooks_keep_their_parameters_cell(path):
    cells = json.loads(path.read_text())["cells"]
    experiment = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"
                  and not "".join(c["source"]).startswith("#| export")]
    # a figure notebook writes figures or claims for its `scale` (a library notebook's examples may call them too)
    if not any(re.search(r"\b(report_claims|save_figure)\([^)]*\bscale\b", source) for source in experiment):
        pytest.skip("not a figure notebook")
    assert has_parameters(path), f"{path.name}: the cell tagged 'parameters' is missing (nbdev-clean strips tags unless allowed)"
    parameters = papermill.inspect_notebook(str(path))
    assert set(parameters) == {"scale", "seed"}, f"{path.name}: parameters are {sorted(parameters)}"
    assert parameters["scale"]["default"] == '"smoke"'


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_clean(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        assert cell.get("execution_count") is None, f"{path.name}: run nbdev-clean"
        assert set(cell.get("metadata", {})) <= {"tags"}, f"{path.name}: cell metadata {cell['metadata']}"


def test_the_claims_cells_are_checked_by_nbval():
    for path in figure_notebooks(ROOT / "nbs"):
        cells = json.loads(path.read_text())["cells"]
        claims = [c for c in cells if "report_claims(" in "".join(c["source"])]
        assert claims, f"{path.name} has no claims cell"
        assert all("".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT") for c in claims), path.name
        assert all(c.get("outputs") for c in claims), f"{path.name}: the claims cell has no stored output"


def exported_objects():
    for path in sorted((ROOT / "datasum").glob("*.py")):
        if path.name.startswith("_"): continue
        module = importlib.import_module(f"datasum.{path.stem}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                yield f"{path.stem}.{name}", obj


@pytest.mark.parametrize("name,obj", list(exported_objects()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_exported_function_has_a_docstring_and_types(name, obj):
    assert inspect.getdoc(obj), f"{name} has no docstring"
    if inspect.isfunction(obj):
        signature = inspect.signature(obj)
        assert signature.return_annotation is not inspect.Signature.empty, f"{name} has no return type"
