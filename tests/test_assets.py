"""fetch_package: one client call, pinned checksums, an atomic cache, a message before each download."""
import hashlib
import json
import subprocess
import sys

import pytest

from datasum import assets as A
from datasum.assets import AssetError, Package, fetch_package


def fake_client(monkeypatch, payload: bytes, name: str = "pkg-1.0-py3-none-any.whl", calls: list | None = None):
    "Replace the registry client by a command that writes `payload` as `name` into the scratch folder."
    def command(package, scratch):
        if calls is not None: calls.append(package.spec)
        return [sys.executable, "-c", f"open({name!r}, 'wb').write({payload!r})"]
    monkeypatch.setattr(A, "_client_command", command)
    return hashlib.sha256(payload).hexdigest()


def test_fetch_package_checks_the_pin_and_caches_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    calls = []
    digest = fake_client(monkeypatch, b"wheel bytes", calls=calls)
    package = Package("pip", "pkg==1.0", {"pkg-1.0-py3-none-any.whl": digest})
    path = fetch_package(package)
    assert path.read_bytes() == b"wheel bytes" and path.parent == tmp_path / "packages" / package.key
    record = json.loads((path.parent / "source.json").read_text())
    assert record == {"file": path.name, "sha256": digest, "client": "pip", "spec": "pkg==1.0"}
    assert fetch_package(package) == path and calls == ["pkg==1.0"]            # cached: the client is not called again
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, "source.json"])   # no scratch left
    path.write_bytes(b"truncated")                                               # damaged: fetched again
    assert fetch_package(package).read_bytes() == b"wheel bytes" and len(calls) == 2


def test_fetch_package_rejects_a_wrong_checksum_and_a_failing_client(tmp_path, monkeypatch):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="unknown client"):
        fetch_package(Package("conda", "x"))
    fake_client(monkeypatch, b"tampered")
    with pytest.raises(AssetError, match="expected 00"):
        fetch_package(Package("pip", "pkg==1.0", {"pkg-1.0-py3-none-any.whl": "00" * 32}))
    assert not list((tmp_path / "packages").rglob("*.whl"))                      # nothing half-installed
    monkeypatch.setattr(A, "_client_command", lambda package, scratch: [sys.executable, "-c", "raise SystemExit('no such package')"])
    with pytest.raises(AssetError, match="could not bring nope==0: no such package"):
        fetch_package(Package("pip", "nope==0"))


def test_a_missing_client_is_an_asset_error_before_anything_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    for client in ("npm", "apt"):
        with pytest.raises(AssetError, match=f"{'apt-get' if client == 'apt' else 'npm'} is not installed"):
            fetch_package(Package(client, "some-package"))
    assert capsys.readouterr().err == ""


def test_fetch_package_says_what_it_downloads_before_the_client_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATASUM_CACHE", str(tmp_path))
    fake_client(monkeypatch, b"wheel bytes")
    fetch_package(Package("pip", "pkg==1.0", size_mb=2.1))
    err = capsys.readouterr().err
    assert err == f"datasum: downloading pkg==1.0 with pip (about 2.1 MB) into {tmp_path / 'packages' / 'pip-pkg==1.0'}\n"
    fetch_package(Package("pip", "pkg==1.0", size_mb=2.1))
    assert capsys.readouterr().err == ""                                         # cached: nothing downloaded, nothing said


def test_assets_does_not_import_the_data_module():
    code = "import sys, datasum.assets; sys.exit('datasum.data' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
