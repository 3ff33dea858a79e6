"""The deployment zip: layout, exclusions, reproducibility, Unix metadata and vendored Linux wheels."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import time
import zipfile
from pathlib import Path

import pytest

from infra.package import SITE_PACKAGES, build_package, requirements_key, vendor_dependencies

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, text: str = "x", mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small project: what ships, and everything that must not."""
    f = tmp_path / "functions"
    write(f / "host.json", '{"version": "2.0"}')
    write(f / "function_app.py", "import chat\n")
    write(f / "proxies.json", "{}")
    write(f / "requirements.txt", "azure-functions==1.26.0\n")
    write(f / "chat" / "__init__.py", "")
    write(f / "chat" / "logic.py", "VALUE = 1\n")
    write(f / "bin" / "start.sh", "#!/bin/sh\n", mode=0o755)
    # Excluded:
    write(f / "local.settings.json", '{"Values": {"secret": "1"}}')
    write(f / "tests" / "test_logic.py", "")
    write(f / "chat" / "test_inline.py", "")
    write(f / "conftest.py", "")
    write(f / "chat" / "__pycache__" / "logic.cpython-311.pyc", "")
    write(f / ".venv" / "lib" / "site.py", "")
    write(f / ".pytest_cache" / "README.md", "")
    write(f / ".funcignore", "# local only\nnotes.txt\ndocs/\n")
    write(f / "notes.txt", "")
    write(f / "docs" / "design.md", "")
    w = tmp_path / "www"
    write(w / "index.html", "<!doctype html>")
    write(w / "js" / "app.js", "export {}")
    write(w / "package.json", "{}")
    write(w / "node_modules" / "@microsoft" / "signalr" / "dist" / "browser" / "signalr.min.js", "/*sr*/")
    write(w / "node_modules" / "@microsoft" / "signalr" / "dist" / "esm" / "index.js", "")
    write(w / "node_modules" / "ws" / "index.js", "")
    outside = tmp_path / "outside.txt"
    write(outside, "secret")
    (w / "leak.txt").symlink_to(outside)
    return tmp_path


def build(tree: Path, out: Path, **kwargs):
    logs: list[str] = []
    result = build_package(
        tree / "functions",
        tree / "www",
        out,
        python_version="3.12",
        cache_dir=kwargs.pop("cache_dir", tree / "cache"),
        vendor=kwargs.pop("vendor", False),
        log=logs.append,
        **kwargs,
    )
    return result, logs


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def test_layout_functions_at_root_www_under_www_and_only_the_signalr_bundle(tree: Path, tmp_path: Path):
    result, _ = build(tree, tmp_path / "out" / "app.zip")
    assert names(result.path) == [
        "bin/start.sh",
        "chat/__init__.py",
        "chat/logic.py",
        "function_app.py",
        "host.json",
        "proxies.json",
        "requirements.txt",
        "www/index.html",
        "www/js/app.js",
        "www/node_modules/@microsoft/signalr/dist/browser/signalr.min.js",
        "www/package.json",
    ]
    assert result.entries == 11
    assert result.sha256 == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert result.size == result.path.stat().st_size


def test_exclusions_tests_caches_settings_venv_funcignore_symlinks(tree: Path, tmp_path: Path):
    result, logs = build(tree, tmp_path / "app.zip")
    listed = "\n".join(names(result.path))
    for banned in (
        "local.settings.json",
        "tests/",
        "test_inline.py",
        "conftest.py",
        "__pycache__",
        ".pyc",
        ".venv",
        ".pytest_cache",
        ".funcignore",
        "notes.txt",
        "docs/",
        "esm/",
        "node_modules/ws",
        "leak.txt",
    ):
        assert banned not in listed, banned
    assert any("skipping symlink www/leak.txt" in line for line in logs)
    # Progress a person sees while `pulumi up` builds: files zipped, then size and hash.
    assert any(line.startswith("zip: ") and line.endswith("files") for line in logs)
    assert any(line.startswith("built app.zip:") and result.sha256[:12] in line for line in logs)


def test_same_inputs_same_bytes_even_with_new_mtimes(tree: Path, tmp_path: Path):
    first, _ = build(tree, tmp_path / "a.zip")
    later = time.time() + 3600
    for path in (tree / "functions").rglob("*"):
        os.utime(path, (later, later), follow_symlinks=False)
    second, _ = build(tree, tmp_path / "b.zip")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256
    write(tree / "functions" / "chat" / "logic.py", "VALUE = 2\n")
    third, _ = build(tree, tmp_path / "c.zip")
    assert third.sha256 != first.sha256


def test_entries_are_sorted_unix_with_fixed_dates_and_mode_bits(tree: Path, tmp_path: Path):
    result, _ = build(tree, tmp_path / "app.zip")
    with zipfile.ZipFile(result.path) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        for info in infos:
            assert info.create_system == 3
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            mode = info.external_attr >> 16
            assert stat.S_ISREG(mode)
            expected = 0o755 if info.filename == "bin/start.sh" else 0o644
            assert stat.S_IMODE(mode) == expected, info.filename
        assert z.read("function_app.py") == b"import chat\n"


def test_missing_host_json_is_refused(tree: Path, tmp_path: Path):
    (tree / "functions" / "host.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"host\.json"):
        build(tree, tmp_path / "app.zip")


def test_missing_signalr_bundle_is_reported(tree: Path, tmp_path: Path):
    shutil.rmtree(tree / "www" / "node_modules")
    _, logs = build(tree, tmp_path / "app.zip")
    assert any("npm ci" in line for line in logs)


def test_failed_vendoring_explains_itself(tree: Path):
    fake_pip = (
        sys.executable,
        "-c",
        "import sys; print('no matching distribution', file=sys.stderr); sys.exit(1)",
    )
    with pytest.raises(RuntimeError, match="no matching distribution") as caught:
        vendor_dependencies(
            tree / "functions" / "requirements.txt", tree / "cache", "3.12", pip=fake_pip, log=print
        )
    assert "Linux x86_64 wheel for Python 3.12" in str(caught.value)
    assert not any((tree / "cache").glob("site-packages-*")), "a failed install leaves no cache entry"


def test_cache_key_follows_requirements_and_target(tree: Path):
    requirements = tree / "functions" / "requirements.txt"
    key = requirements_key(requirements, "3.12")
    assert key == requirements_key(requirements, "3.12")
    assert key != requirements_key(requirements, "3.11")
    write(requirements, "azure-functions==1.25.0\n")
    assert key != requirements_key(requirements, "3.12")


@pytest.fixture(scope="module")
def vendor_cache(tmp_path_factory) -> Path:
    """One download per test session: the real runtime requirements, as Linux CPython 3.12 wheels."""
    return tmp_path_factory.mktemp("vendor-cache")


@pytest.mark.slow
def test_vendored_dependencies_are_linux_cpython312_wheels_and_cached(
    tree: Path, tmp_path: Path, vendor_cache
):
    shutil.copy(ROOT / "functions" / "requirements.txt", tree / "functions" / "requirements.txt")
    logs: list[str] = []
    site = vendor_dependencies(tree / "functions" / "requirements.txt", vendor_cache, "3.12", log=logs.append)
    result, build_logs = build(tree, tmp_path / "app.zip", vendor=True, cache_dir=vendor_cache)
    assert any("dependencies: cached" in line for line in build_logs), "second use must hit the cache"
    listed = names(result.path)
    prefix = f"{SITE_PACKAGES}/"
    vendored = [n for n in listed if n.startswith(prefix)]
    assert any(n.startswith(f"{prefix}azure/functions/") for n in vendored)
    assert any(n.startswith(f"{prefix}azure_functions-1.26.0.dist-info/") for n in vendored)
    binaries = [n for n in vendored if n.endswith(".so")]
    assert binaries, "aiohttp's compiled extensions are expected"
    # CPython 3.12 on Linux x86_64: version-tagged extensions, or stable-ABI ones (cryptography's
    # `_rust.abi3.so`), which carry no platform in their name, so their ELF header is read instead.
    assert all("cpython-312-x86_64-linux-gnu" in n or n.endswith(".abi3.so") for n in binaries), binaries
    with zipfile.ZipFile(result.path) as z:
        for name in (n for n in binaries if n.endswith(".abi3.so")):
            header = z.read(name)[:20]
            assert header[:4] == b"\x7fELF" and header[18:20] == b"\x3e\x00", name  # EM_X86_64
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in vendored)
    assert not any(n.startswith(f"{prefix}bin/") for n in vendored)
    assert not any(n.endswith(".complete") for n in vendored)
    assert (site / ".complete").is_file()
    with zipfile.ZipFile(result.path) as z:
        so = z.getinfo(binaries[0])
        assert so.create_system == 3


@pytest.mark.slow
def test_real_repository_tree_builds(tmp_path: Path, vendor_cache):
    result = build_package(
        ROOT / "functions",
        ROOT / "www",
        tmp_path / "real.zip",
        python_version="3.12",
        cache_dir=vendor_cache,
        log=lambda _m: None,
    )
    listed = set(names(result.path))
    assert {"host.json", "function_app.py", "requirements.txt", "www/index.html"} <= listed
    if (ROOT / "functions" / "proxies.json").exists():
        assert "proxies.json" in listed
    bundle = "www/node_modules/@microsoft/signalr/dist/browser/signalr.min.js"
    if (ROOT / "www" / bundle.removeprefix("www/")).exists():
        assert bundle in listed
    assert not [n for n in listed if "/node_modules/" in n and "/@microsoft/signalr/dist/browser/" not in n]
    assert not [
        n for n in listed if "local.settings.json" in n or "__pycache__" in n or n.startswith("tests/")
    ]
    assert any(n.startswith(f"{SITE_PACKAGES}/aiohttp/") for n in listed)
    again = build_package(
        ROOT / "functions",
        ROOT / "www",
        tmp_path / "again.zip",
        python_version="3.12",
        cache_dir=vendor_cache,
        log=lambda _m: None,
    )
    assert again.sha256 == result.sha256
