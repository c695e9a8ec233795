"""Publish the LoRA adapter being trained to an inference server, through vLLM's dynamic LoRA API.

After each update the trainer calls :meth:`AdapterPublisher.publish`: the adapter is written with
``peft``'s ``save_pretrained`` to a versioned folder ``FOLDER/vNNNNNNNN`` (under a temporary name,
then renamed), the server is told to load it (``POST /v1/load_lora_adapter``) as ``PREFIX-vN``, and
then to drop the one before (``POST /v1/unload_lora_adapter``), whose folder is removed. Requests
that name the new adapter are answered by the new weights. ``horizongym serve`` and vLLM (started
with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) both answer this API; the
server reads the folder itself, so it must see the same filesystem (a shared volume across machines).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx

from horizongym.agents.base import PolicyError


class PublishError(PolicyError):
    """The policy's server could not be reached, or refused to load or unload an adapter."""


class AdapterPublisher:
    """Save a ``peft`` model's adapter per version and keep ``base_url``'s loaded adapter in step."""

    def __init__(
        self, base_url: str, folder: str | Path, prefix: str, *, api_key: str | None = None, timeout_s: float = 300.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.folder = Path(folder)
        self.prefix = prefix
        self.current: tuple[str, Path] | None = None
        """The adapter loaded last (its name and folder)."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0))

    def name(self, version: int) -> str:
        """The served name of ``version``'s adapter: ``PREFIX-vN``."""
        return f"{self.prefix}-v{version}"

    def publish(self, model: Any, version: int) -> str:
        """Save ``model``'s adapter as ``version``, load it on the server, drop the previous; return its name."""
        name = self.name(version)
        path = self._save(model, version)
        try:
            self._post("load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        except PublishError as exc:
            if "already been loaded" not in str(exc):  # a resumed run meets its own last adapter: replace it
                raise
            self._post("unload_lora_adapter", {"lora_name": name})
            self._post("load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        previous, self.current = self.current, (name, path)
        if previous is not None and previous[0] != name:
            self._post("unload_lora_adapter", {"lora_name": previous[0]})
            shutil.rmtree(previous[1], ignore_errors=True)
        return name

    def _save(self, model: Any, version: int) -> Path:
        final = (self.folder / f"v{version:08d}").resolve()
        tmp = final.with_name(f".{final.name}.tmp")
        for stale in (tmp, final):
            if stale.exists():
                shutil.rmtree(stale)
        final.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(tmp))
        tmp.rename(final)
        return final

    def _post(self, endpoint: str, body: dict[str, str]) -> None:
        url = f"{self.base_url}/{endpoint}"
        try:
            response = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise PublishError(
                f"cannot reach {url} ({type(exc).__name__}: {exc}): start the server "
                "(horizongym serve MODEL_DIR, or vLLM with --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) "
                "or fix --rollout-server"
            ) from exc
        if response.status_code != 200:
            raise PublishError(f"{url} answered HTTP {response.status_code}: {response.text[:300]}")

    def close(self) -> None:
        self._client.close()


__all__ = ["AdapterPublisher", "PublishError"]
