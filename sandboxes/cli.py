"""``horizongym sandbox doctor`` and ``horizongym sandbox build-image``.

``doctor`` says what works and what is missing for the docker backend, each missing piece with
the command that fixes it, then runs one command in a real sandbox; it exits with status 1 when
docker sandboxes cannot be used (``open_sandbox(backend="auto")`` would fall back to the local,
non-isolating backend). ``build-image`` makes sure an engine answers (installing and starting
one where it may) and the base image exists, and prints its tag.

:func:`add_sandbox_commands` registers both under a ``sandbox`` command of an argparse parser.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from horizongym.sandboxes.base import SandboxError, SandboxSpec
from horizongym.sandboxes.engine import engine_status, ensure_engine
from horizongym.sandboxes.images import base_image_tag, ensure_base_image, image_exists


def _line(out: TextIO, ok: bool | None, what: str, fix: str = "") -> None:
    mark = {True: "ok  ", False: "MISS", None: "--  "}[ok]
    print(f"[{mark}] {what}" + (f"\n         fix: {fix}" if fix and not ok else ""), file=out)


def doctor(out: TextIO | None = None, *, try_sandbox: bool = True) -> int:
    """Print what the docker backend has and lacks (with fixes) to ``out`` (standard output when None,
    looked up at call time); 0 if docker sandboxes work, else 1."""
    out = out or sys.stdout
    status = engine_status()
    _line(out, status.docker_sdk, "docker SDK for Python", "pip install 'docker>=7'")
    _line(out, status.dockerd_installed, "docker engine installed (dockerd)", "sudo apt-get install -y docker.io")
    _line(
        out,
        status.debootstrap_installed,
        "debootstrap (builds the base image offline)",
        "sudo apt-get install -y debootstrap",
    )
    _line(
        out,
        status.is_root and status.has_apt,
        "root with apt-get (lets horizongym install the two above itself)",
        "run as root, or install them yourself",
    )
    engine_fix = "horizongym sandbox build-image (as root: installs and starts dockerd), or: sudo dockerd &"
    _line(
        out,
        status.engine_answers,
        f"engine answers (server {status.engine_version})"
        if status.engine_answers
        else f"engine answers ({status.engine_error})",
        engine_fix,
    )
    usable = status.engine_answers
    if status.engine_answers:
        client = ensure_engine()
        tag = base_image_tag()
        have = image_exists(client, tag)
        _line(out, have, f"base image {tag}", "horizongym sandbox build-image")
        if have and try_sandbox:
            usable = _try_sandbox(out, tag) and usable
    print("", file=out)
    if usable:
        print("docker sandboxes work: open_sandbox(spec) runs commands in containers.", file=out)
        return 0
    print(
        "docker sandboxes do NOT work here: open_sandbox(spec) falls back to LocalSandbox, which isolates "
        "nothing. Apply the fixes above.",
        file=out,
    )
    return 1


def _try_sandbox(out: TextIO, image: str) -> bool:
    from horizongym.sandboxes.docker import DockerSandbox

    try:
        start = time.monotonic()
        with DockerSandbox(SandboxSpec(image=image)) as box:
            started = time.monotonic() - start
            result = box.exec("echo $((6 * 7)); id -un", timeout=20)
            network = box.exec("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 53), 2)'", timeout=10)
        ok = result.exit_code == 0 and result.output.split()[:1] == ["42"]
        _line(out, ok, f"a sandbox starts ({started * 1000:.0f} ms) and runs a command as {result.output.split()[-1:]}")
        _line(out, network.exit_code != 0, "no network inside the sandbox")
        return ok and network.exit_code != 0
    except SandboxError as exc:
        _line(out, False, f"a sandbox starts: {exc}", "see the error; horizongym sandbox build-image")
        return False


def build_image(out: TextIO | None = None, *, mirror: str | None = None) -> str:
    """Ensure an engine and the base image; print its tag to ``out`` (standard output when None) and return it."""
    client = ensure_engine()
    tag = base_image_tag(mirror)
    if not image_exists(client, tag):
        print(f"building {tag} with debootstrap (about two minutes, once per machine)...", file=sys.stderr)
    tag = ensure_base_image(client, mirror=mirror)
    print(tag, file=out or sys.stdout)
    return tag


def cmd_doctor(args: argparse.Namespace) -> None:
    code = doctor(try_sandbox=not args.no_run)
    if code:
        raise SystemExit(code)


def cmd_build_image(args: argparse.Namespace) -> None:
    try:
        build_image(mirror=args.mirror)
    except SandboxError as exc:
        print(f"horizongym: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


def add_sandbox_commands(subparsers: Any) -> None:
    """Add ``sandbox doctor`` and ``sandbox build-image`` to an argparse sub-parsers object."""
    sandbox = subparsers.add_parser("sandbox", help="docker sandboxes: check the machine, build the base image")
    commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    p = commands.add_parser("doctor", help="what works and what is missing for docker sandboxes (exit 1 if unusable)")
    p.add_argument("--no-run", action="store_true", help="do not start a sandbox to check it")
    p.set_defaults(run=cmd_doctor)
    p = commands.add_parser(
        "build-image", help="install/start the engine if needed, build the base image, print its tag"
    )
    p.add_argument(
        "--mirror", help="Debian mirror for debootstrap (default $HORIZONGYM_DEBIAN_MIRROR or deb.debian.org)"
    )
    p.set_defaults(run=cmd_build_image)


def main(argv: list[str] | None = None) -> int:
    """``python -m horizongym.sandboxes.cli doctor|build-image`` (the same as ``horizongym sandbox ...``)."""
    parser = argparse.ArgumentParser(prog="horizongym")
    add_sandbox_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
