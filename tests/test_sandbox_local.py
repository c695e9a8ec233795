"""The local backend: same protocol, a temporary folder, plain processes, and it says it does not isolate."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from horizongym.sandboxes import Limits, LocalSandbox, Sandbox, SandboxError, SandboxSpec, open_sandbox, tar_files
from horizongym.sandboxes import local as local_module

SPEC = SandboxSpec(
    image="unused",
    files=tar_files({"README.md": "hello\n", "pkg/mod.py": "VALUE = 1\n"}),
    env=(("GREETING", "hi there"),),
    limits=Limits(output_bytes=2000, file_size_mb=1, memory_mb=512),
)


@pytest.fixture
def box() -> Iterator[LocalSandbox]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sandbox = LocalSandbox(SPEC)
    yield sandbox
    sandbox.close()


def test_it_says_it_does_not_isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_module, "_warned", False)
    with pytest.warns(RuntimeWarning, match="nothing is isolated"):
        sandbox = LocalSandbox(SPEC)
    try:
        assert sandbox.isolated is False
        assert isinstance(sandbox, Sandbox)
        assert "does not isolate" in (local_module.__doc__ or "") and "not isolated" in (LocalSandbox.__doc__ or "")
        assert "not isolated" in repr(sandbox)
    finally:
        sandbox.close()


def test_exec_runs_in_the_folder_with_the_starting_files(box: LocalSandbox) -> None:
    result = box.exec('echo "$GREETING"; cat README.md; python3 -c "import pkg.mod as m; print(m.VALUE)"; exit 4')
    assert result.exit_code == 4
    assert result.output == "hi there\nhello\n1\n"
    assert box.exec("pwd").output.strip() == str(box.workdir)


def test_output_is_cut_head_and_tail(box: LocalSandbox) -> None:
    result = box.exec("seq 1 100000")
    assert result.truncated and result.output.startswith("1\n2\n") and result.output.endswith("100000\n")
    assert len(result.output) < 2100


def test_timeout_kills_the_group_and_keeps_partial_output(box: LocalSandbox) -> None:
    start = time.monotonic()
    result = box.exec("echo before; sleep 30 & sleep 30", timeout=1.0)
    assert time.monotonic() - start < 3.0
    assert result.timed_out and result.limit == "timeout" and result.output == "before\n"
    assert result.exit_code == 128 + 9


def test_a_background_job_does_not_hold_up_the_command(box: LocalSandbox) -> None:
    start = time.monotonic()
    result = box.exec("sleep 30 & echo started", timeout=20)
    assert time.monotonic() - start < 2.0 and result.output == "started\n"


def test_file_size_limit(box: LocalSandbox) -> None:
    result = box.exec("head -c 10M /dev/zero > big.bin")
    assert result.limit == "file_size", result


def test_files_map_the_workdir_and_reset_restores_them(box: LocalSandbox) -> None:
    box.write_file("/work/notes/a.txt", b"absolute")
    box.write_file("notes/b.txt", b"relative")
    assert box.read_file("notes/a.txt") == b"absolute"
    assert box.exec("cat notes/b.txt").output == "relative"
    with pytest.raises(FileNotFoundError):
        box.read_file("missing.txt")
    with pytest.raises(TypeError):
        box.write_file("x.txt", "text")  # type: ignore[arg-type]
    box.exec("echo changed > README.md; rm pkg/mod.py")
    box.reset()
    assert box.read_file("README.md") == b"hello\n"
    assert sorted(p.name for p in box.workdir.rglob("*") if p.is_file()) == ["README.md", "mod.py"]


def test_close_removes_the_folder_and_refuses_more(box: LocalSandbox) -> None:
    root = box.root
    box.close()
    assert not root.exists()
    with pytest.raises(SandboxError, match="closed"):
        box.exec("true")


def test_open_sandbox_local_and_bad_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with closing(open_sandbox(SPEC, backend="local")) as sandbox:
            assert isinstance(sandbox, LocalSandbox)
            assert sandbox.exec("cat README.md").output == "hello\n"
            with pytest.raises(ValueError, match="timeout"):
                sandbox.exec("true", timeout=-1)
    with pytest.raises(ValueError, match="workdir"):
        LocalSandbox(SandboxSpec(image="x", workdir="relative"))


def test_an_archive_snapshot_restores_the_folder_into_new_sandboxes_that_share_nothing() -> None:
    import pickle

    from horizongym.sandboxes.snapshots import restore_sandbox, snapshot_sandbox

    spec = SandboxSpec(image="unused", files=tar_files({"a.txt": "a\n", "d/b.txt": "b\n", "keep.txt": "k\n"}))
    with closing(LocalSandbox(spec)) as trunk:
        trunk.exec('echo changed > a.txt && rm -r d && mkdir e && echo new > e/n.txt && echo t > "$TMPDIR/t"')
        with pytest.raises(ValueError, match="archive"):
            snapshot_sandbox(trunk, "commit")
        snap = pickle.loads(pickle.dumps(snapshot_sandbox(trunk, "archive")))
    assert snap.removed == ("d",)
    with closing(restore_sandbox(snap)) as one, closing(restore_sandbox(snap)) as two:
        listing = 'find . -type f | sort && cat a.txt "$TMPDIR/t"'
        assert one.exec(listing).output == "./a.txt\n./e/n.txt\n./keep.txt\nchanged\nt\n"
        one.exec("echo only > only.txt")
        assert two.exec(listing).output == "./a.txt\n./e/n.txt\n./keep.txt\nchanged\nt\n"


def test_a_snapshot_with_links_out_of_the_workdir_restores_them() -> None:
    """A virtualenv's ``bin/python -> /usr/bin/python3`` is the sandbox's own file: a snapshot holding
    it restores (it is a link, nothing is written through it)."""
    from horizongym.sandboxes.snapshots import restore_sandbox, snapshot_sandbox

    spec = SandboxSpec(image="unused", files=tar_files({"a.txt": "a\n"}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with closing(LocalSandbox(spec)) as trunk:
            trunk.exec("mkdir -p venv/bin && ln -s /usr/bin/python3 venv/bin/python && ln -s / top")
            snap = snapshot_sandbox(trunk, "archive")
        with closing(restore_sandbox(snap)) as branch:
            assert branch.exec("readlink venv/bin/python top").output == "/usr/bin/python3\n/\n"


def test_a_snapshot_overlay_never_writes_through_a_link(tmp_path: Path) -> None:
    """A tar whose link points out of the folder and whose next member goes through that link is refused
    before anything is written outside (the members are checked against the folder as extracted)."""
    import io
    import tarfile

    from horizongym.sandboxes.server import overlay

    outside, work = tmp_path / "outside", tmp_path / "work"
    outside.mkdir()
    work.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        link = tarfile.TarInfo("work/out")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        archive.addfile(link)
        data = b"escaped\n"
        member = tarfile.TarInfo("work/out/x.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    with pytest.raises(ValueError, match="outside the workdir"):
        overlay(buffer.getvalue(), {"work": str(work)}, {}, [])
    assert list(outside.iterdir()) == []
    (work / "out").unlink()
    (work / "same").symlink_to(outside / "y.txt")  # a link already in place is replaced, not followed
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo("work/same")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    overlay(buffer.getvalue(), {"work": str(work)}, {}, [])
    assert (work / "same").read_text() == "escaped\n" and not (work / "same").is_symlink()
    assert list(outside.iterdir()) == []
