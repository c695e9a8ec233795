"""From an instance's recipe to what a sandbox starts from: an image and the starting files.

:func:`prepare` is all the harness and the environment need: it makes sure the environment
image exists (built offline from wheels downloaded on the host: the test runner pinned in
:data:`~horizongym.envs.swe.packages.TEST_REQUIREMENTS` plus the recipe's dependencies, in a
virtual environment at ``/opt/venv`` whose ``bin`` leads the image's ``PATH``) and
returns the agent's starting files: the source release (its SHA-256 checked) with
``start_patch`` applied, as a fresh git repository with a single commit. The commit holds the
starting state only, so nothing of the hidden tests can be found in ``.git``; its hash is the
instance's ``base_commit``.

The project's source is not baked into the image: one image serves every task of a package
(and every package with the same test dependencies), and the files travel with the sandbox.
Images are memoised per process; starting files are cached on disk by the hash of their
recipe (source hash and ``start_patch``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from horizongym.cache import cached
from horizongym.envs.swe.packages import (
    TEST_REQUIREMENTS,
    SourceError,
    download_wheels,
    folder_files,
    load_source,
    parse_source,
)
from horizongym.envs.swe.types import SWEEnvironment, SWEInstance
from horizongym.sandboxes import tar_files
from horizongym.sandboxes.images import DEFAULT_PATH

PREPARE_VERSION = "1"
"""Bumped when the starting files of the same recipe change (it is part of their cache key)."""
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "horizongym",
    "GIT_AUTHOR_EMAIL": "horizongym@localhost",
    "GIT_COMMITTER_NAME": "horizongym",
    "GIT_COMMITTER_EMAIL": "horizongym@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+0000",
}
GIT_EXCLUDE = "__pycache__/\n*.pyc\n.pytest_cache/\n*.egg-info/\n"
"""Written to ``.git/info/exclude``: what running the tests leaves behind is not part of a diff."""
VENV = "/opt/venv"
IMAGE_PATH = f"{VENV}/bin:{DEFAULT_PATH}"
"""``python``, ``python3``, ``pip`` and ``pytest`` are the virtual environment's."""

_images: dict[str, str] = {}
_images_lock = threading.Lock()
_files: dict[str, tuple[bytes, str]] = {}
_files_lock = threading.Lock()


@dataclass(frozen=True)
class PreparedTask:
    """What a sandbox for one instance starts from."""

    image: str
    files: bytes
    """Uncompressed tar of the starting files (with ``.git``), relative to the working directory."""
    base_commit: str


def prepare(instance: SWEInstance) -> PreparedTask:
    """The image and starting files of ``instance`` (built or fetched the first time, then cached)."""
    files, commit = starting_files(instance.environment, instance.repo)
    if instance.base_commit and commit != instance.base_commit:
        raise SourceError(
            f"{instance.instance_id}: the starting state has commit {commit}, the instance says {instance.base_commit}"
        )
    return PreparedTask(image=environment_image(instance.environment), files=files, base_commit=commit)


def pristine_tree(instance: SWEInstance) -> dict[str, bytes]:
    """The unmodified source release of ``instance`` (its hash checked)."""
    env = instance.environment
    return dict(load_source(env.source, env.sdist_sha256).files)


# ----- images --------------------------------------------------------------------------------
def image_requirements(environment: SWEEnvironment) -> list[str]:
    """Everything installed in the image: the pinned test runner and the recipe's dependencies."""
    return sorted({*TEST_REQUIREMENTS, *environment.dependencies})


def image_name(environment: SWEEnvironment) -> str:
    """The image's name: one image per distinct set of requirements."""
    digest = hashlib.sha256("\n".join(image_requirements(environment)).encode()).hexdigest()[:12]
    return f"swe-env-{digest}"


def image_commands(requirements: list[str], wheel_dir: str = "/opt/wheels") -> list[str]:
    """Shell commands that build the test environment from ``wheel_dir`` with no network."""
    return [
        f"python3 -m venv {VENV}",
        f"{VENV}/bin/pip install --quiet --no-index --find-links {wheel_dir} " + " ".join(requirements),
        f"rm -rf {wheel_dir}",
    ]


def environment_image(environment: SWEEnvironment) -> str:
    """The tag of the environment image, built the first time (offline, from host-downloaded wheels).

    Where no Docker engine can be had (none answers, and none can be installed and started),
    nothing is built and the image's bare name comes back: only the local backend, which
    ignores images, can run such a task.
    """
    requirements = image_requirements(environment)
    name = image_name(environment)
    with _images_lock:
        if name in _images:
            return _images[name]
        from horizongym.sandboxes.engine import engine_status
        from horizongym.sandboxes.images import derive_image, ensure_base_image

        if not engine_status().usable:
            return name
        wheels = folder_files(download_wheels(requirements))
        tag = derive_image(
            ensure_base_image(),
            name,
            files=tar_files(wheels),
            target_dir="/opt/wheels",
            commands=image_commands(requirements),
            network=False,
            image_env={"PATH": IMAGE_PATH},
        )
        _images[name] = tag
        return tag


# ----- starting files ------------------------------------------------------------------------
def starting_files(environment: SWEEnvironment, label: str = "") -> tuple[bytes, str]:
    """(tar of the starting repository, its commit hash) for a recipe, cached on disk and in memory."""
    key_text = "\0".join([PREPARE_VERSION, environment.source, environment.sdist_sha256, environment.start_patch])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:24]
    with _files_lock:
        if key in _files:
            return _files[key]

    def build(folder: Path) -> None:
        release = load_source(environment.source, environment.sdist_sha256)
        files = apply_patch(release.files, environment.start_patch)
        tar, commit = git_repository(files, message=label or release.label)
        (folder / "files.tar").write_bytes(tar)
        (folder / "commit").write_text(commit)

    _, name, _ = parse_source(environment.source)
    folder = cached(f"swe-start-{name}-{key}", build)
    result = ((folder / "files.tar").read_bytes(), (folder / "commit").read_text().strip())
    with _files_lock:
        _files[key] = result
    return result


def apply_patch(files: Mapping[str, bytes], patch: str) -> dict[str, bytes]:
    """``files`` with a unified diff applied (``git apply``, which refuses anything that does not fit)."""
    if not patch.strip():
        return dict(files)
    with tempfile.TemporaryDirectory(prefix="horizongym-apply-") as tmp:
        root = Path(tmp)
        _write_tree(root, files)
        (root.parent / f"{root.name}.patch").write_text(patch, encoding="utf-8")
        try:
            _git(root, "apply", "--whitespace=nowarn", str(root.parent / f"{root.name}.patch"))
        finally:
            (root.parent / f"{root.name}.patch").unlink()
        return folder_files(root)


def git_repository(files: Mapping[str, bytes], *, message: str) -> tuple[bytes, str]:
    """(tar of ``files`` plus a ``.git`` with one commit of them, the commit's hash).

    The commit's author, committer and dates are fixed, so the same files give the same hash
    on every machine.
    """
    with tempfile.TemporaryDirectory(prefix="horizongym-repo-") as tmp:
        root = Path(tmp)
        _write_tree(root, files)
        _git(root, "init", "--quiet", "--template=", "--initial-branch=main")
        (root / ".git" / "info").mkdir(parents=True, exist_ok=True)
        (root / ".git" / "info" / "exclude").write_text(GIT_EXCLUDE)
        _git(root, "add", "--all", "--force", ".")
        _git(root, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message)
        commit = _git(root, "rev-parse", "HEAD").strip()
        return tar_files(folder_files(root)), commit


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _git(root: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CEILING_DIRECTORIES": str(root.parent),  # never pick up a repository around the temp folder
        "LC_ALL": "C",
        **GIT_IDENTITY,
    }
    command = ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", "-c", "core.fileMode=false", *args]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SourceError(f"git {' '.join(args[:2])} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout
