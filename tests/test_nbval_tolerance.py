"""The stored claims that nbval checks: numbers may move within the tolerance printed next to them, nothing else may.

One notebook holds a cell per case, each with a stored output that differs from what the cell
prints; nbval runs it with this project's conftest.py, as `make test` does, and each cell must
pass or fail as the case says.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORED = "[holds] SASRec beats PopRec\n    paper: SASRec > PopRec | ours: 6.43 vs 4.38 (± 0.5)\n"
EXACT = "[holds] ML-100K users\n    paper: 943 | ours: 943\n"
CASES = [  # (stored, printed now, passes)
    (STORED, STORED, True),
    (STORED, STORED.replace("6.43", "6.34"), True),                                 # other CPU kernels
    (STORED, STORED.replace("6.43", "7.1"), False),                                 # beyond the tolerance
    (STORED, STORED.replace("[holds]", "[fails]"), False),                          # the claim flipped
    (STORED, STORED.replace("(± 0.5)", "(± 5)").replace("6.43", "9.9"), False),      # a widened tolerance
    (EXACT, EXACT.replace("ours: 943", "ours: 942"), False),                        # no tolerance: exact
]


def checked_cell(number: int, stored: str, prints: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": f"case{number}", "metadata": {},
            "source": f"# NBVAL_CHECK_OUTPUT\nprint({prints!r}, end='')",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": stored}]}


def test_checked_outputs_compare_numbers_within_the_stated_tolerance(tmp_path):
    notebook = {"cells": [checked_cell(n, stored, prints) for n, (stored, prints, _) in enumerate(CASES)],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    shutil.copy(ROOT / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "claims.ipynb").write_text(json.dumps(notebook))
    run = subprocess.run([sys.executable, "-m", "pytest", "-v", "--color=no", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", "claims.ipynb"], cwd=tmp_path, capture_output=True, text=True)
    outcomes = dict(re.findall(r"claims\W+ipynb::Cell (\d+) (PASSED|FAILED)", run.stdout))
    assert {int(cell): outcome == "PASSED" for cell, outcome in outcomes.items()} == {
        n: passes for n, (_, _, passes) in enumerate(CASES)}, run.stdout[-3000:]
