"""Source releases that bugs are mined from: PyPI sdists and the embedded library.

A *source* is named ``pypi:NAME==VERSION`` (or just ``NAME==VERSION``), the release's source
distribution as ``pip download --no-binary :all: --no-deps`` fetches it, or
``embedded:NAME``, a folder under ``envs/swe/embedded/`` laid out like an unpacked sdist.
Either way it becomes a :class:`SourceRelease`: its files (top folder stripped), the SHA-256 of
the archive (for the embedded library, of a canonical tar of the folder) and its
:class:`Layout` (import root, source modules, test files).

:data:`DEFAULT_PACKAGES` are the real packages of ``SWE-v0``'s ``"pypi"`` task set: small,
popular, pure Python, with test suites that ship in the sdist, need nothing but pytest and run
in seconds. :data:`TEST_REQUIREMENTS` pins the test runner installed in every environment
image, so an image built later runs the tests exactly as the one the tasks were mined in.

Downloads are cached under ``$HORIZONGYM_CACHE`` (:mod:`horizongym.cache`): an
sdist by name and version (its hash checked on every use), wheels by the hash of the pinned
requirements.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from horizongym.cache import cached
from horizongym.envs.swe.patches import is_test_path
from horizongym.sandboxes import tar_files

DEFAULT_PACKAGES = ("inflection==0.5.1", "toolz==1.0.0", "boltons==24.1.0")
"""Pinned real packages mined by default (each yields 12 validated tasks with the default limits)."""

EXTRA_PACKAGES = ("more-itertools==10.5.0", "six==1.17.0")
"""Also mined cleanly (12 validated tasks each), but slower to validate: not in the default set."""

TEST_REQUIREMENTS = ("pytest==8.3.5", "pluggy==1.5.0", "iniconfig==2.0.0", "packaging==24.2")
"""The test runner and its dependencies, installed from wheels in every environment image."""

EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"
EMBEDDED_CREATED_AT = "2025-01-01T00:00:00Z"
IMAGE_PYTHON = "3.11"
"""The Python of the sandbox base image (Debian bookworm): wheels are chosen for it."""

_NOT_PACKAGES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "benchmarks", "build", "dist"})
_NOT_MODULES = frozenset({"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "versioneer.py", "tasks.py"})
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)$")
_IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})


class SourceError(RuntimeError):
    """A source release could not be fetched, verified or understood."""


@dataclass(frozen=True)
class Layout:
    """Where a release keeps its code and its tests (paths relative to the release root)."""

    python_path: list[str]
    """Import roots: ``["src"]`` for a src layout, else ``["."]``."""
    source_files: list[str]
    """The package's own modules (candidates for mutation); no tests, no build scripts."""
    test_files: list[str]
    """Files pytest collects by default (``test_*.py``, ``*_test.py``)."""


@dataclass(frozen=True)
class SourceRelease:
    """The files of one release of one project, with the hash that pins them."""

    source: str
    """``pypi:NAME==VERSION`` or ``embedded:NAME``."""
    name: str
    version: str
    sha256: str
    files: Mapping[str, bytes] = field(repr=False)
    created_at: str = ""
    """When the release was made (the newest file time in the archive), ISO 8601 in UTC."""

    @property
    def is_embedded(self) -> bool:
        return self.source.startswith("embedded:")

    @property
    def layout(self) -> Layout:
        return detect_layout(self.files)

    @property
    def label(self) -> str:
        """``NAME==VERSION`` for PyPI releases, ``embedded:NAME`` for the embedded library."""
        return self.source if self.is_embedded else f"{self.name}=={self.version}"


def parse_source(spec: str) -> tuple[str, str, str]:
    """``(kind, name, version)`` of a source spec; ``version`` is empty for embedded sources."""
    spec = spec.strip()
    if spec.startswith("embedded:"):
        name = spec.removeprefix("embedded:")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"bad embedded source name {name!r}")
        return "embedded", name, ""
    match = _REQUIREMENT.match(spec.removeprefix("pypi:"))
    if match is None:
        raise ValueError(f"a source is 'NAME==VERSION', 'pypi:NAME==VERSION' or 'embedded:NAME'; got {spec!r}")
    return "pypi", match.group(1), match.group(2)


def load_source(spec: str, sha256: str = "") -> SourceRelease:
    """The release ``spec`` names; when ``sha256`` is given, the archive must have that hash."""
    kind, name, version = parse_source(spec)
    release = embedded_source(name) if kind == "embedded" else pypi_source(name, version)
    if sha256 and release.sha256 != sha256:
        raise SourceError(f"{release.source}: the source has SHA-256 {release.sha256}, expected {sha256}")
    return release


# ----- PyPI ----------------------------------------------------------------------------------
def download_sdist(name: str, version: str) -> Path:
    """The sdist of ``NAME==VERSION`` in the cache, fetched with ``pip download`` the first time."""

    def build(folder: Path) -> None:
        pip_download(folder, ["--no-binary", ":all:", "--no-deps", f"{name}=={version}"])
        archives = [p for p in folder.iterdir() if p.name.endswith((".tar.gz", ".zip", ".tar.bz2", ".tgz"))]
        if len(archives) != 1:
            raise SourceError(f"pip download {name}=={version} gave {len(archives)} source archives, not one")

    folder = cached(f"swe-sdist-{_key_part(name)}-{_key_part(version)}", build)
    return next(p for p in sorted(folder.iterdir()) if not p.name.startswith("."))


def pypi_source(name: str, version: str) -> SourceRelease:
    """The sdist of ``NAME==VERSION``, downloaded (once) and read."""
    archive = download_sdist(name, version)
    data = archive.read_bytes()
    files, newest = read_archive(archive.name, data)
    return SourceRelease(
        source=f"pypi:{name}=={version}",
        name=name,
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        files=files,
        created_at=_iso(newest),
    )


def read_archive(filename: str, data: bytes) -> tuple[dict[str, bytes], float]:
    """(regular files by path with the top folder stripped, newest modification time) of an sdist."""
    members: list[tuple[str, bytes, float]] = []
    if filename.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    stamp = datetime(*info.date_time, tzinfo=UTC).timestamp()
                    members.append((info.filename, archive.read(info), stamp))
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                if member.isfile():
                    handle = archive.extractfile(member)
                    if handle is not None:
                        members.append((member.name, handle.read(), float(member.mtime)))
    files: dict[str, bytes] = {}
    newest = 0.0
    for name, content, stamp in members:
        parts = PurePosixPath(name).parts[1:]  # the sdist's top folder, NAME-VERSION/
        if not parts or ".." in parts or any(part in _IGNORED_PARTS for part in parts) or name.endswith(".pyc"):
            continue
        files["/".join(parts)] = content
        newest = max(newest, stamp)
    if not files:
        raise SourceError(f"{filename}: no files")
    return dict(sorted(files.items())), newest


# ----- the embedded library ------------------------------------------------------------------
def embedded_names() -> list[str]:
    """The libraries under ``envs/swe/embedded/``."""
    return sorted(p.name for p in EMBEDDED_ROOT.iterdir() if (p / "pyproject.toml").is_file())


def embedded_source(name: str) -> SourceRelease:
    """The embedded library ``name``, read from its folder; its hash is a canonical tar's."""
    root = EMBEDDED_ROOT / name
    if not (root / "pyproject.toml").is_file():
        raise SourceError(f"no embedded library {name!r} (have: {', '.join(embedded_names())})")
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and not (set(relative.parts) & _IGNORED_PARTS) and path.suffix != ".pyc":
            files[relative.as_posix()] = path.read_bytes()
    version = str(tomllib.loads(files["pyproject.toml"].decode())["project"]["version"])
    return SourceRelease(
        source=f"embedded:{name}",
        name=name,
        version=version,
        sha256=hashlib.sha256(tar_files(files)).hexdigest(),
        files=files,
        created_at=EMBEDDED_CREATED_AT,
    )


# ----- layout --------------------------------------------------------------------------------
def detect_layout(files: Mapping[str, bytes]) -> Layout:
    """Import root (``src`` layout or flat), the package's modules and its test files."""
    paths = sorted(files)
    src_layout = any(p.startswith("src/") and p.endswith(".py") for p in paths)
    root = "src" if src_layout else "."
    prefix = "src/" if src_layout else ""
    top_packages = sorted(
        {
            p[len(prefix) :].split("/")[0]
            for p in paths
            if p.startswith(prefix) and p.endswith("/__init__.py") and p[len(prefix) :].count("/") == 1
        }
        - _NOT_PACKAGES
    )
    source_files = []
    for path in paths:
        relative = path[len(prefix) :] if path.startswith(prefix) else None
        if relative is None or not path.endswith(".py") or is_test_path(path):
            continue
        parts = relative.split("/")
        if len(parts) == 1:
            if parts[0] not in _NOT_MODULES and not parts[0].startswith(("test", "_version")):
                source_files.append(path)
        elif parts[0] in top_packages and not parts[-1].startswith("_version"):
            source_files.append(path)
    test_files = [
        p for p in paths if _is_test_module(p) and not (set(p.split("/")[:-1]) & {"build", "dist", "docs", "doc"})
    ]
    if not source_files:
        raise SourceError("found no package modules to work on")
    return Layout(python_path=[root], source_files=source_files, test_files=test_files)


def _is_test_module(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


# ----- wheels and archives -------------------------------------------------------------------
def pip_download(folder: Path, arguments: list[str]) -> None:
    """``pip download --dest FOLDER ARGUMENTS``; :class:`SourceError` with pip's errors, on one line, if it fails."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        lines = [line.strip() for line in f"{result.stdout}\n{result.stderr}".splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR:")] or lines[-3:]
        raise SourceError(f"pip download {' '.join(arguments)} failed: {' / '.join(errors)}"[:3000])


def download_wheels(requirements: Iterable[str]) -> Path:
    """A folder holding wheels for ``requirements`` (exact pins, no dependency resolution), cached."""
    pins = sorted(set(requirements))
    key = hashlib.sha256(f"{IMAGE_PYTHON}\n{chr(10).join(pins)}".encode()).hexdigest()[:20]

    def build(folder: Path) -> None:
        pip_download(folder, ["--only-binary", ":all:", "--no-deps", "--python-version", IMAGE_PYTHON, *pins])

    return cached(f"swe-wheels-{key}", build)


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder``, by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
