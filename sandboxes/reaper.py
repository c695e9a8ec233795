"""Who owns a container, and removing the ones whose owner is gone.

Every container this package starts carries the label ``horizongym=<run id>``, where the run id
``r<pid>-<start time>`` names the process that started it (its pid and its start time in clock
ticks since boot, as ``/proc/<pid>/stat`` gives it, so a reused pid is not mistaken for the
owner), plus ``horizongym.pidns`` (the owner's pid namespace: a pid means something only there).

* :func:`reap_leftovers` removes containers whose owner is dead, and snapshot images
  (``horizongym.kind=snapshot``, :mod:`horizongym.sandboxes.snapshots`) whose owner is dead:
  called once per process, when it first opens a sandbox or a pool. Containers of live
  processes (other pytest-xdist workers, other runs) are left alone, and so are those from
  another pid namespace, which this process cannot check.
* :func:`install_exit_cleanup` removes this process's own containers (and snapshot images) at
  exit (``atexit``) and on SIGTERM/SIGINT (the handlers then chain to the ones that were there
  before). SIGKILL cannot be
  caught: sandbox containers then remove themselves (their attach connection closes, see
  :mod:`horizongym.sandboxes.docker`), and the next start-up reaps anything still left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from types import FrameType
from typing import Any

LABEL = "horizongym"
SNAPSHOT_KIND = "snapshot"
"""``horizongym.kind`` of a committed sandbox snapshot image (:mod:`horizongym.sandboxes.snapshots`):
the only images reaped (task images carry the build's owner label too, and outlive it)."""
_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "run_id": None, "reaped": False, "installed_pid": None, "signals_pid": None}


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "unknown"


def run_id() -> str:
    """This process's run id, ``r<pid>-<start time>`` (recomputed in a forked child)."""
    pid = os.getpid()
    if _state["pid"] != pid:
        _state.update(pid=pid, run_id=f"r{pid}-{process_start_time(pid) or 0}", reaped=False, owns=False)
    return str(_state["run_id"])


def owner_labels() -> dict[str, str]:
    """The labels that tie a container to this process (asking for them marks the process as an owner)."""
    owner = run_id()
    _state["owns"] = True
    return {LABEL: owner, f"{LABEL}.pidns": _pid_namespace()}


def owner_alive(owner: str, pidns: str | None = None) -> bool:
    """Whether the process named by run id ``owner`` still runs (True when it cannot be told)."""
    if pidns is not None and pidns != _pid_namespace():
        return True
    try:
        pid_text, start_text = owner[1:].split("-", 1)
        pid, start = int(pid_text), int(start_text)
    except ValueError:
        return True
    if not owner.startswith("r"):
        return True
    return process_start_time(pid) == start


def _remove(container: Any) -> bool:
    try:
        container.remove(force=True)
        return True
    except Exception as exc:  # already gone, or being removed by someone else
        return "No such container" in str(exc) or "already in progress" in str(exc)


def reap_leftovers(client: Any) -> int:
    """Remove containers labelled ``horizongym`` whose owner process is dead, then the snapshot
    images of dead owners; how many of both were removed."""
    orphans = []
    for container in client.containers.list(all=True, filters={"label": LABEL}, sparse=True):
        labels = container.attrs.get("Labels") or {}  # sparse: one listing call, no inspect per container
        owner = labels.get(LABEL, "")
        if owner and not owner_alive(owner, labels.get(f"{LABEL}.pidns")):
            orphans.append(container)
    removed = _remove_all(orphans)
    images = []
    for image in _snapshot_images(client):
        labels = image.labels or {}
        owner = labels.get(LABEL, "")
        if owner and not owner_alive(owner, labels.get(f"{LABEL}.pidns")):
            images.append(image)
    return removed + sum(_remove_image(client, image) for image in images)


def _snapshot_images(client: Any, owner: str | None = None) -> list[Any]:
    """The snapshot images (of ``owner``, when given)."""
    filters = [f"{LABEL}.kind={SNAPSHOT_KIND}"] + ([f"{LABEL}={owner}"] if owner else [])
    return list(client.images.list(filters={"label": filters}))


def _remove_image(client: Any, image: Any) -> bool:
    """Remove a snapshot image (every tag of it); False when a container still uses it."""
    try:
        client.images.remove(image.id, force=True)
        return True
    except Exception as exc:  # already gone, or in use by a container of a live process
        return "No such image" in str(exc)


def reap_once(client: Any) -> None:
    """:func:`reap_leftovers` the first time a process calls it, then install the exit clean-up."""
    run_id()
    with _lock:
        first = not _state["reaped"]
        _state["reaped"] = True
    if first:
        with contextlib.suppress(Exception):
            reap_leftovers(client)
    install_exit_cleanup()


def remove_own(client: Any | None = None) -> int:
    """Remove every container this process started, then its snapshot images; how many were removed."""
    try:
        if client is None:
            import docker

            client = docker.from_env(timeout=30)
        mine = client.containers.list(all=True, filters={"label": f"{LABEL}={run_id()}"}, sparse=True)
    except Exception:
        return 0
    removed = _remove_all(mine)
    try:
        images = _snapshot_images(client, run_id())
    except Exception:
        return removed
    return removed + sum(_remove_image(client, image) for image in images)


def _remove_all(containers: list[Any]) -> int:
    """Remove containers in parallel threads (plain threads: executors refuse work during interpreter exit)."""
    done: list[bool] = []
    threads = [threading.Thread(target=lambda c=c: done.append(_remove(c))) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sum(done)


def _cleanup_at_exit() -> None:
    if _state["installed_pid"] == os.getpid() and _state["pid"] == os.getpid() and _state.get("owns"):
        remove_own()


def _chain(signum: int, previous: Any) -> Any:
    def handler(sig: int, frame: FrameType | None) -> None:
        _cleanup_at_exit()
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    return handler


def install_exit_cleanup() -> None:
    """Remove this process's containers at exit and on SIGTERM/SIGINT (once per process).

    Signal handlers can only be set from the main thread; called from another one, only the
    ``atexit`` part is done, and a later call from the main thread adds the handlers (importing
    :mod:`horizongym.sandboxes.docker` makes one). Nothing is asked of the engine at exit unless
    this process labelled a container as its own.
    """
    pid = os.getpid()
    with _lock:
        if _state["installed_pid"] != pid:
            _state["installed_pid"] = pid
            atexit.register(_cleanup_at_exit)
        if _state["signals_pid"] == pid or threading.current_thread() is not threading.main_thread():
            return
        _state["signals_pid"] = pid
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError, OSError):
            previous = signal.getsignal(signum)
            signal.signal(signum, _chain(signum, previous))
