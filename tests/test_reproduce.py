"""`datasum reproduce` on a throw-away project: a failing notebook is named with its cell, the others are kept."""
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from datasum import reproduce as R

ROOT = Path(__file__).resolve().parent.parent


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    cells = [nbformat.v4.new_code_cell('scale = "smoke"\nseed = 0')]
    cells[0].metadata["tags"] = ["parameters"]
    nb.cells = cells + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ROOT / "settings.ini", tmp_path / "settings.ini")
    monkeypatch.setenv("DATASUM_SETTINGS", str(tmp_path / "settings.ini"))
    (tmp_path / "nbs").mkdir()
    good = notebook("from datasum.report import Claim, report_claims",
                    "_ = report_claims([Claim('one plus one', '2', str(1 + 1), 1 + 1 == 2, kind='check')], scale, 'toy')")
    bad = notebook("x = 1", "raise ValueError('broken on purpose')")
    nbformat.write(good, tmp_path / "nbs" / "10_good.ipynb")
    nbformat.write(bad, tmp_path / "nbs" / "11_bad.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "nbs" / "12_no_parameters.ipynb")
    return tmp_path


def test_reproduce_reports_the_failing_cell_and_keeps_the_rest(project, capsys):
    code = R.main(["reproduce", "--scale", "smoke"])
    assert code == 1
    err = capsys.readouterr().err
    assert "nbs/11_bad.ipynb" in err and "ValueError: broken on purpose" in err
    assert "cell 3 (`raise ValueError('broken on purpose')`)" in err   # numbered and quoted as in the source notebook
    claims = (project / "figures" / "smoke" / "CLAIMS.md").read_text()
    assert "one plus one" in claims and "Checks: 1, of which 0 fail" in claims and "Paper claims: 0 hold" in claims
    manifest = json.loads((project / "figures" / "smoke" / "MANIFEST.json").read_text())
    assert [(n["notebook"], n["status"]) for n in manifest["notebooks"]] == [("10_good.ipynb", "ok"), ("11_bad.ipynb", "failed")]
    assert manifest["scale"] == "smoke" and "numpy" in manifest["packages"]
    assert (project / "runs" / "smoke" / "11_bad.ipynb").is_file()  # the executed copy, for reading


def test_only_runs_the_named_notebooks_and_merges_the_manifest(project):
    R.main(["reproduce", "--only", "bad"])
    assert R.main(["reproduce", "--only", "good"]) == 0
    manifest = json.loads((project / "figures" / "smoke" / "MANIFEST.json").read_text())
    assert [n["notebook"] for n in manifest["notebooks"]] == ["10_good.ipynb", "11_bad.ipynb"]


def test_unknown_names_and_scales_are_one_line_errors(project, capsys):
    assert R.main(["reproduce", "--only", "nothing"]) == 2
    err = capsys.readouterr().err
    assert err == "datasum: error: no figure notebook matches ['nothing']; available: 10_good, 11_bad\n"
    assert R.main(["reproduce", "--scale", "laptop"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'laptop'" in err and len(err.splitlines()) == 1


def test_reproduce_outside_a_checkout_says_what_it_needs(tmp_path, monkeypatch, capsys):
    shutil.copy(ROOT / "settings.ini", tmp_path / "settings.ini")   # an installed package: settings, no notebooks
    monkeypatch.setenv("DATASUM_SETTINGS", str(tmp_path / "settings.ini"))
    assert R.main(["reproduce"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "checkout" in err
    assert err.startswith("datasum: error:") and "git clone" in err and ".[dev]" in err
    assert not (tmp_path / "figures").exists() and not (tmp_path / "runs").exists()


def test_version_and_help(capsys):
    from datasum import __version__
    assert R.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"datasum {__version__}"
    assert R.main(["reproduce", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: smoke)" in out and "examples:" in out and "datasum reproduce --scale cpu" in out
    assert R.main(["fetch", "--help"]) == 0
    assert "examples:" in capsys.readouterr().out


def test_top_level_help_imports_no_model_library():
    import subprocess, sys
    code = ("import sys; from datasum.reproduce import main; status = main(['--help']); "
            "print(status, sorted(m for m in ('torch', 'jax', 'transformers', 'datasum.svp_cf', 'datasum.ask_llm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"
    assert "sample" in out and "score" in out   # the subcommands are listed all the same


def test_every_registered_command_module_defines_add_arguments():
    import importlib, importlib.util
    present = [R.command_target(name) for name in R.COMMANDS if importlib.util.find_spec(R.command_target(name)[0])]
    assert ("datasum.svp_cf", "add_arguments") in present and ("datasum.ask_llm", "add_arguments") in present
    for module, function in present: assert callable(getattr(importlib.import_module(module), function)), (module, function)


def test_the_kernel_runs_with_the_hash_seed_and_the_callers_environment_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    seen = tmp_path / "seen.txt"
    path = tmp_path / "13_env.ipynb"
    nbformat.write(notebook(f"import os; open({str(seen)!r}, 'w').write(os.environ['PYTHONHASHSEED'])"), path)
    run = R.run_notebook(path, "smoke", 0, tmp_path / "runs")
    assert run.status == "ok", run.error
    assert seen.read_text() == R.NOTEBOOK_HASH_SEED
    import os
    assert os.environ["PYTHONHASHSEED"] == "random"
