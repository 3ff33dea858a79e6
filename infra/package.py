"""Build the Function App's deployment zip: reproducible, Linux-ready, with vendored dependencies.

Layout (what the Flex host expects with RemoteBuild=false, where the zip is used verbatim):

    function_app.py, host.json, proxies.json, chat/...     functions/ at the zip root
    www/...                                                the static client
    www/node_modules/@microsoft/signalr/dist/browser/...   the SignalR browser bundle only
    .python_packages/lib/site-packages/...                 functions/requirements.txt, Linux x86_64 wheels

Reproducible: entries sorted, timestamps fixed, Unix mode bits, one compression level, so the same inputs give
the same bytes and the same sha256 — the deploy step redeploys only when that sha256 changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
SIGNALR_BUNDLE = Path("node_modules/@microsoft/signalr/dist/browser")
SITE_PACKAGES = ".python_packages/lib/site-packages"
# glibc-based Linux x86_64: manylinux2014 is glibc 2.17; 2_28 admits wheels that dropped the 2014 tag.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")

# Never shipped, wherever they appear.
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".hypothesis",
        ".venv",
        "venv",
        ".git",
        ".vscode",
        ".idea",
        "tests",
        "test",
        "node_modules",
        ".data",
    }
)
EXCLUDED_FILES = (
    "local.settings.json",
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    "Thumbs.db",
    ".funcignore",
    ".gitignore",
    "test_*.py",
    "*_test.py",
    "conftest.py",
)

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"package: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class PackageResult:
    path: Path
    sha256: str
    size: int
    entries: int


@dataclass(frozen=True)
class _Entry:
    arcname: str
    source: Path
    mode: int


def read_funcignore(functions_dir: Path) -> list[str]:
    """Patterns from functions/.funcignore (gitignore-like: one per line, '#' comments)."""
    path = functions_dir / ".funcignore"
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and not line.startswith("!"):
            patterns.append(line)
    return patterns


# Vendored packages are shipped as pip installed them (a package may import its own `tests`), minus bytecode.
VENDOR_EXCLUDED_DIRS = frozenset({"__pycache__"})
VENDOR_EXCLUDED_FILES = ("*.pyc", "*.pyo", ".complete")


def _ignored(
    rel: str,
    name: str,
    is_dir: bool,
    patterns: Sequence[str],
    excluded_dirs: frozenset[str] = EXCLUDED_DIRS,
    excluded_files: Sequence[str] = EXCLUDED_FILES,
) -> bool:
    if is_dir and name in excluded_dirs:
        return True
    if not is_dir and any(fnmatch.fnmatch(name, p) for p in excluded_files):
        return True
    for pattern in patterns:
        anchored = pattern.lstrip("/")
        bare = anchored.rstrip("/")
        if pattern.endswith("/") and not is_dir:
            continue
        if fnmatch.fnmatch(rel, bare) or fnmatch.fnmatch(name, bare) or fnmatch.fnmatch(rel, f"{bare}/*"):
            return True
    return False


def _walk(
    root: Path,
    prefix: str,
    patterns: Sequence[str] = (),
    log: Log = _stderr,
    *,
    vendored: bool = False,
) -> Iterator[_Entry]:
    """Regular files under root (sorted, filtered). Symlinks are skipped: a link could leave the tree."""
    dirs, files = (
        (VENDOR_EXCLUDED_DIRS, VENDOR_EXCLUDED_FILES) if vendored else (EXCLUDED_DIRS, EXCLUDED_FILES)
    )
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        kept = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if vendored and rel == "bin":
                continue  # console scripts pip wrote for this machine, useless on the host
            if (base / d).is_symlink():
                log(f"skipping symlinked directory {prefix}{rel}")
            elif not _ignored(rel, d, True, patterns, dirs, files):
                kept.append(d)
        dirnames[:] = kept
        for f in sorted(filenames):
            rel = f if rel_dir == "." else f"{rel_dir}/{f}"
            path = base / f
            if path.is_symlink():
                log(f"skipping symlink {prefix}{rel}")
                continue
            if not path.is_file() or _ignored(rel, f, False, patterns, dirs, files):
                continue
            executable = os.stat(path).st_mode & 0o111
            yield _Entry(f"{prefix}{rel}", path, 0o755 if executable else 0o644)


def requirements_key(requirements: Path, python_version: str, platforms: Sequence[str] = PLATFORMS) -> str:
    """Cache key of a vendored tree: the requirements file's sha256 plus the target it was built for."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"|{python_version}|{','.join(platforms)}|cp".encode())
    return digest.hexdigest()


def vendor_dependencies(
    requirements: Path,
    cache_dir: Path,
    python_version: str,
    *,
    platforms: Sequence[str] = PLATFORMS,
    log: Log = _stderr,
    pip: Sequence[str] = (sys.executable, "-m", "pip"),
) -> Path:
    """Install requirements as Linux x86_64 CPython wheels into a cached directory and return it.

    Wheels only (`--only-binary=:all:`): pip cannot build sdists for another platform, and a remote build is
    off. The tree is cached by requirements_key, so an unchanged requirements.txt costs nothing on the next
    build.
    """
    key = requirements_key(requirements, python_version, platforms)
    target = cache_dir / f"site-packages-{key[:16]}"
    if (target / ".complete").is_file():
        log(f"dependencies: cached ({target.name})")
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=cache_dir))
    platform_args = [arg for p in platforms for arg in ("--platform", p)]
    command = [
        *pip,
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(staging),
        *platform_args,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    log(f"dependencies: pip install for CPython {python_version} on {', '.join(platforms)}")
    started = time.monotonic()
    # The command is built from our own arguments (no shell); pip is this interpreter's.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(
            f"vendoring {requirements} failed (exit {result.returncode}); a dependency may have no "
            f"Linux x86_64 wheel for Python {python_version}:\n{result.stderr.strip()}"
        )
    (staging / ".complete").write_text(key + "\n", encoding="utf-8")
    if target.exists():  # another build finished first; keep its tree
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(target)
    log(f"dependencies: vendored in {time.monotonic() - started:.1f} s")
    return target


def collect_entries(
    functions_dir: Path,
    www_dir: Path | None,
    site_packages: Path | None,
    log: Log = _stderr,
) -> list[_Entry]:
    """Every file of the package with its path in the zip, sorted by that path."""
    if not (functions_dir / "host.json").is_file():
        raise FileNotFoundError(f"{functions_dir} has no host.json: not a Functions project")
    entries = list(_walk(functions_dir, "", read_funcignore(functions_dir), log))
    if www_dir is not None and www_dir.is_dir():
        entries += _walk(www_dir, "www/", (), log)
        bundle = www_dir / SIGNALR_BUNDLE
        if bundle.is_dir():
            entries += _walk(bundle, f"www/{SIGNALR_BUNDLE.as_posix()}/", (), log)
        else:
            log(f"warning: {bundle} is missing (run `npm ci` in www/); the client cannot load SignalR")
    if site_packages is not None:
        entries += _walk(site_packages, f"{SITE_PACKAGES}/", (), log, vendored=True)
    names = [e.arcname for e in entries]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two sources for the same zip entries: {sorted(duplicates)[:5]}")
    return sorted(entries, key=lambda e: e.arcname)


def write_zip(entries: Sequence[_Entry], destination: Path, log: Log = _stderr) -> PackageResult:
    """Write entries reproducibly, then hash the bytes."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(destination.suffix + ".partial")
    step = max(1, len(entries) // 4)
    with zipfile.ZipFile(partial, "w") as archive:
        for index, entry in enumerate(entries, 1):
            info = zipfile.ZipInfo(entry.arcname, date_time=FIXED_DATE)
            info.create_system = 3  # Unix, so the mode bits below are honoured on Linux
            info.external_attr = (0o100000 | entry.mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entry.source.read_bytes(), compresslevel=6)
            if index % step == 0 or index == len(entries):
                log(f"zip: {index}/{len(entries)} files")
    partial.replace(destination)
    digest = hashlib.sha256()
    with destination.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return PackageResult(destination, digest.hexdigest(), destination.stat().st_size, len(entries))


def build_package(
    functions_dir: Path,
    www_dir: Path | None,
    output: Path,
    *,
    python_version: str,
    cache_dir: Path,
    vendor: bool = True,
    log: Log = _stderr,
) -> PackageResult:
    """functions/ + www/ + vendored requirements → one reproducible zip at `output`."""
    started = time.monotonic()
    log(f"building {output.name} from {functions_dir} and {www_dir}")
    site_packages = None
    requirements = functions_dir / "requirements.txt"
    if vendor and requirements.is_file():
        site_packages = vendor_dependencies(requirements, cache_dir, python_version, log=log)
    entries = collect_entries(functions_dir, www_dir, site_packages, log)
    result = write_zip(entries, output, log)
    log(
        f"built {output.name}: {result.entries} files, {result.size / 1e6:.1f} MB, "
        f"sha256 {result.sha256[:12]}, {time.monotonic() - started:.1f} s"
    )
    return result


if __name__ == "__main__":  # python -m infra.package: build the real package into build/
    root = Path(__file__).resolve().parent.parent
    built = build_package(
        root / "functions",
        root / "www",
        root / "build" / "cosmic-chat-app.zip",
        python_version=os.environ.get("COSMIC_PYTHON_VERSION", "3.12"),
        cache_dir=root / "build" / "vendor",
    )
    print(built.path, built.sha256)
