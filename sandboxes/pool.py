"""A warm pool of docker sandboxes: started containers, exec server up, starting files in place.

Starting a container costs a few hundred milliseconds; taking a ready one from the pool costs
one round trip to check it still answers. The pool owns up to ``size`` containers (ready or in
use) for each of the ``max_specs`` specs acquired most recently, keyed by what a container is
created from (image, workdir, env, limits) *and* the digest of ``spec.files``, so a warm acquire
does not even unpack files. Background threads start containers until each spec has ``size``;
set ``size`` to the number of episodes that run at the same time (plus one or two).

:meth:`SandboxPool.acquire` takes, in order: a ready container for this exact spec; a ready one
created the same way but holding other files (reloaded: a reset to this spec's files); a new one.
Closing an acquired sandbox gives its container back: it is reset (every process killed, workdir,
/tmp and /dev/shm emptied, the files restored) and kept if its spec is still wanted and has no
more than ``size`` containers, else removed. A container that stopped answering is never given
out again, and a closed sandbox object refuses further calls (its container lives on in a new one).

Thread-safe: episodes running in threads can acquire and release at the same time.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from horizongym.sandboxes.base import SandboxError, SandboxSpec
from horizongym.sandboxes.docker import DockerSandbox, _check_spec, config_key, start_container
from horizongym.sandboxes.reaper import reap_once

log = logging.getLogger(__name__)
_ids = itertools.count(1)

PoolKey = tuple[Any, ...]


def pool_key(spec: SandboxSpec) -> PoolKey:
    """Containers are interchangeable for two specs with the same key."""
    return (*config_key(spec), spec.files_digest)


class SandboxPool:
    """Ready docker sandboxes per recently used spec, refilled in the background (module docstring).

    ``size``: containers kept per spec, ready or in use; ``max_specs``: how many recently acquired specs are
    kept warm (the least recently used one beyond that is dropped); ``specs``: warm these from
    the start; ``refill_threads``: containers started at the same time.
    """

    def __init__(
        self,
        size: int = 4,
        *,
        specs: Iterable[SandboxSpec] = (),
        max_specs: int = 4,
        refill_threads: int = 2,
        client: Any | None = None,
    ) -> None:
        if size < 0 or max_specs < 1 or refill_threads < 1:
            raise ValueError("size >= 0, max_specs >= 1 and refill_threads >= 1 are needed")
        if client is None:
            from horizongym.sandboxes.engine import shared_client

            client = shared_client()
        self.client = client
        self.size = size
        self.max_specs = max_specs
        self.name = f"p{os.getpid()}-{next(_ids)}"
        self._cond = threading.Condition()
        self._ready: dict[PoolKey, deque[DockerSandbox]] = {}
        self._wanted: OrderedDict[PoolKey, SandboxSpec] = OrderedDict()
        self._starting: dict[PoolKey, int] = {}
        self._busy: dict[PoolKey, int] = {}
        """Sandboxes handed out and not yet given back, per key."""
        self._closed = False
        self.last_error: str | None = None
        self.started = 0
        """Containers this pool started (a measure of how often it missed)."""
        self._removals = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sandbox-remove")
        reap_once(client)
        for spec in specs:
            self.prewarm(spec)
        self._threads = [
            threading.Thread(target=self._refill_loop, name=f"sandbox-pool-{i}", daemon=True)
            for i in range(refill_threads)
        ]
        for thread in self._threads:
            thread.start()

    def __repr__(self) -> str:
        return f"SandboxPool(size={self.size}, {self.stats()})"

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- what users call -------------------------------------------------------------
    def prewarm(self, spec: SandboxSpec, *, wait: float = 0.0) -> int:
        """Keep containers ready for ``spec``; wait up to ``wait`` s until ``size`` (less those in use) are.

        Returns how many are ready. Raises :class:`SandboxError` if starting one failed meanwhile
        (a missing image, say): the pool then stops trying for this spec until it is asked again.
        """
        _check_spec(spec)
        key = pool_key(spec)
        deadline = time.monotonic() + wait
        with self._cond:
            self._want(key, spec)
            self._cond.notify_all()
            while len(self._ready.get(key, ())) < self.size - self._busy.get(key, 0) and not self._closed:
                if key not in self._wanted:
                    raise SandboxError(f"the pool could not start a sandbox for {spec.image!r}: {self.last_error}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return len(self._ready.get(key, ()))

    def acquire(self, spec: SandboxSpec) -> DockerSandbox:
        """A sandbox for ``spec`` (warm when the pool has one); ``close()`` gives it back."""
        _check_spec(spec)
        if self._closed:
            raise SandboxError("this SandboxPool is closed", retryable=False)
        key = pool_key(spec)
        with self._cond:
            self._want(key, spec)
            self._busy[key] = self._busy.get(key, 0) + 1  # counted from now: no refill races the hand-out
            self._cond.notify_all()
        try:
            return self._get(key, spec)
        except BaseException:
            with self._cond:
                self._busy[key] -= 1
                self._cond.notify_all()
            raise

    def _get(self, key: PoolKey, spec: SandboxSpec) -> DockerSandbox:
        while True:
            box = self._take(key)
            if box is None:
                break
            if box.ping():
                box.spec = spec
                return box
            self._discard(box)
        other = self._take_same_config(spec)
        if other is not None:
            try:
                other.load(spec)
                return other
            except SandboxError:
                self._discard(other)
        container, channel = start_container(self.client, spec, labels={"horizongym.pool": self.name})
        with self._cond:
            self.started += 1
        return DockerSandbox.adopt(spec, self.client, container, channel, self)

    def release(self, box: DockerSandbox) -> None:
        """Take back an acquired sandbox (what its ``close()`` does): reset it and keep it, or remove it."""
        if box._closed:
            return
        box._closed = True
        key = pool_key(box.spec)
        fresh: DockerSandbox | None = None
        if not self._closed and box._dead is None:
            fresh = DockerSandbox.adopt(box.spec, self.client, box.container, box.channel, self)
            try:
                fresh.reset()
            except SandboxError:
                fresh = None
        with self._cond:  # one step: the refill threads must not count it as gone meanwhile
            self._busy[key] = self._busy.get(key, 1) - 1
            if fresh is not None and not self._closed and key in self._wanted and self._owned(key) < self.size:
                self._ready.setdefault(key, deque()).append(fresh)
                self._cond.notify_all()
                return
            self._cond.notify_all()
        self._discard(fresh or box)

    def stats(self) -> dict[str, int]:
        """Counts: ready containers, specs kept warm, containers being started, sandboxes in use."""
        with self._cond:
            return {
                "ready": sum(len(q) for q in self._ready.values()),
                "specs": len(self._wanted),
                "starting": sum(self._starting.values()),
                "in_use": sum(self._busy.values()),
                "started": self.started,
            }

    def close(self) -> None:
        """Stop refilling and remove every ready container (sandboxes in use are removed when closed)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            boxes = [box for queue in self._ready.values() for box in queue]
            self._ready.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)
        for box in boxes:
            self._discard(box)
        self._removals.shutdown(wait=True)

    # ----- inside ----------------------------------------------------------------------
    def _want(self, key: PoolKey, spec: SandboxSpec) -> None:
        """Mark ``spec`` as most recently used; drop the least recently used beyond ``max_specs`` (lock held)."""
        self._wanted[key] = spec
        self._wanted.move_to_end(key)
        while len(self._wanted) > self.max_specs:
            old, _ = self._wanted.popitem(last=False)
            for box in self._ready.pop(old, deque()):
                self._discard(box)

    def _take(self, key: PoolKey) -> DockerSandbox | None:
        with self._cond:
            queue = self._ready.get(key)
            if queue:
                box = queue.popleft()
                self._cond.notify_all()
                return box
        return None

    def _take_same_config(self, spec: SandboxSpec) -> DockerSandbox | None:
        """A ready container created like ``spec``'s but holding other files (from the fullest queue)."""
        config = config_key(spec)
        with self._cond:
            queues = [q for key, q in self._ready.items() if key[:-1] == config and q]
            if not queues:
                return None
            box = max(queues, key=len).popleft()
            self._cond.notify_all()
            return box

    def _owned(self, key: PoolKey) -> int:
        """Containers of ``key``: ready, being started, or in use (lock held)."""
        return len(self._ready.get(key, ())) + self._starting.get(key, 0) + self._busy.get(key, 0)

    def _discard(self, box: DockerSandbox) -> None:
        box._closed = True
        try:
            self._removals.submit(box.destroy)
        except RuntimeError:  # the executor is shut down (interpreter exit): remove it here
            box.destroy()

    def _next_job(self) -> tuple[PoolKey, SandboxSpec] | None:
        """The most recently wanted spec that lacks containers (lock held)."""
        for key in reversed(self._wanted):
            if self._owned(key) < self.size:
                return key, self._wanted[key]
        return None

    def _refill_loop(self) -> None:
        failures = 0
        while True:
            with self._cond:
                job = None
                while not self._closed:
                    job = self._next_job()
                    if job is not None:
                        break
                    self._cond.wait(1.0)
                if self._closed or job is None:
                    return
                key, spec = job
                self._starting[key] = self._starting.get(key, 0) + 1
            box: DockerSandbox | None = None
            try:
                container, channel = start_container(self.client, spec, labels={"horizongym.pool": self.name})
                box = DockerSandbox.adopt(spec, self.client, container, channel, self)
                failures = 0
            except Exception as exc:  # keep the thread alive; acquire() reports errors itself
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("sandbox pool could not start a container: %s", self.last_error)
            with self._cond:
                self._starting[key] -= 1
                if box is None:
                    self._wanted.pop(key, None)  # stop retrying until the spec is asked for again
                    self._cond.notify_all()
                else:
                    self.started += 1
                    if not self._closed and key in self._wanted and self._owned(key) < self.size:
                        self._ready.setdefault(key, deque()).append(box)
                        box = None
                    self._cond.notify_all()
            if box is not None:
                self._discard(box)
            if failures:
                time.sleep(min(0.1 * 2**failures, 2.0))


_shared_pools: dict[tuple[int, int, int], SandboxPool] = {}
_shared_lock = threading.Lock()


def shared_pool(size: int = 2, max_specs: int = 4) -> SandboxPool:
    """One process-wide :class:`SandboxPool` per ``(size, max_specs)``, made on first use.

    Environments that start a sandbox per episode (``SWE-v0``) take theirs from here, so the
    episodes of all their instances in a process share warm containers. A forked child gets
    its own pool. :func:`close_shared_pools` removes the ready containers (the reaper removes
    whatever is left at exit).
    """
    key = (os.getpid(), size, max_specs)
    with _shared_lock:
        pool = _shared_pools.get(key)
        if pool is None or pool._closed:
            pool = _shared_pools[key] = SandboxPool(size, max_specs=max_specs)
        return pool


def close_shared_pools() -> None:
    """Close every shared pool of this process (their ready containers are removed)."""
    with _shared_lock:
        pools = [pool for (pid, *_), pool in _shared_pools.items() if pid == os.getpid()]
        _shared_pools.clear()
    for pool in pools:
        pool.close()
