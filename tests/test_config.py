"""settings.ini, the scales and atomic writes."""
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
