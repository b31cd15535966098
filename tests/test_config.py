"""settings.ini, the scales, atomic writes, and torch sessions that leave the caller's state alone."""
import pytest

from datasum.config import ConfigError, SCALES, atomic_write, methods, settings


def test_every_method_has_every_scale():
    for method in methods():
        for scale in SCALES:
            assert isinstance(settings(method, scale), dict)


def test_unknown_scale_and_method_list_the_valid_ones():
    with pytest.raises(ConfigError, match="valid scales: smoke, cpu, paper"):
        settings("data", "huge")
    with pytest.raises(ConfigError, match="valid methods: .*data.*metrics"):
        settings("nonsense")


def test_settings_file_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "settings.ini").write_text("[toy.smoke]\nlr = 6e-3\nks = [1, 2]\nname = ml-1m\n")
    monkeypatch.setenv("DATASUM_SETTINGS", str(tmp_path / "settings.ini"))
    knobs = settings("toy", "smoke")
    assert knobs == {"lr": 0.006, "ks": [1, 2], "name": "ml-1m"} and knobs.lr == 0.006
    with pytest.raises(ConfigError, match="no section \\[toy.cpu\\]"):
        settings("toy", "cpu")


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_a_wheel_carries_the_scales_and_is_no_checkout(tmp_path):
    # pip builds the wheel from this tree; extracted, it is importable as an installed package
    import os, shutil, subprocess, sys, zipfile
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    source = tmp_path / "source"   # what a source distribution holds; the build leaves its files there, not here
    shutil.copytree(root / "datasum", source / "datasum", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "settings.ini"): shutil.copy(root / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel, = (tmp_path / "wheel").glob("datasum-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("datasum/settings.ini") == (root / "settings.ini").read_bytes()
        archive.extractall(tmp_path / "site")
    probe = ("from datasum.config import settings, settings_path, project_root, ConfigError\n"
             "print(settings_path()); print(settings('data', 'cpu')['datasets'])\n"
             "try: project_root()\nexcept ConfigError as error: print('no checkout:', error)")
    env = {k: v for k, v in os.environ.items() if k != "DATASUM_SETTINGS"} | {"PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == str(tmp_path / "site" / "datasum" / "settings.ini")
    assert "ml-100k" in lines[1]
    assert lines[2].startswith("no checkout:") and "git clone" in lines[2]


def test_torch_session_leaves_the_callers_generator_and_threads_as_they_were():
    torch = pytest.importorskip("torch")
    from datasum.config import torch_session
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    count = torch.get_num_threads()
    with torch_session(0, threads=1) as generator:
        inside = torch.rand(2), torch.rand(2, generator=generator)
        assert torch.get_num_threads() == 1
    with pytest.raises(RuntimeError), torch_session(0, threads=1) as generator:
        again = torch.rand(2), torch.rand(2, generator=generator)
        raise RuntimeError("interrupted")
    assert all(torch.equal(a, b) for a, b in zip(inside, again))            # the same seed, the same draws
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == count   # the caller's stream goes on
