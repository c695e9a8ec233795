"""LoRA adapters loaded into a served model at run time, by name (vLLM's dynamic LoRA, on ``peft``).

:class:`LoraAdapters` keeps the adapters of one :class:`~horizongym.agents.hf.TransformersPolicy`:
:meth:`~LoraAdapters.load` reads a ``peft`` ``save_pretrained`` folder into the model under a
name, :meth:`~LoraAdapters.unload` drops it again. The first adapter wraps the model in a
``PeftModel``; dropping the last one gives the plain base model back. Each request then names
its adapter (``TransformersPolicy.generate(adapter=...)``), and one batch may mix adapters and
the base weights (peft's mixed-batch inference), so a new adapter can be loaded while requests
for the previous one are still being served.

Loading and unloading change the model, so they hold the policy's model lock (no batch decodes
meanwhile) and block: call them from a worker thread. A failed load leaves the model as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from horizongym.agents.hf import TransformersPolicy

ADAPTER_CONFIG = "adapter_config.json"


class AdapterError(Exception):
    """A load or unload the adapters refused; ``status`` and ``kind`` are vLLM's HTTP status and error type."""

    status = 400
    kind = "BadRequestError"


class AdapterNotFound(AdapterError):
    """No adapter by that name is loaded, or no adapter lies at that path."""

    status = 404
    kind = "NotFoundError"


class AdapterExists(AdapterError):
    """An adapter by that name is loaded already."""

    kind = "InvalidUserInput"


class AdapterIncompatible(AdapterError):
    """The folder holds an adapter that does not fit the served model (other shapes, other modules)."""


@dataclass(frozen=True)
class LoadedAdapter:
    """An adapter being served: its name, the folder it was read from, when (Unix seconds)."""

    name: str
    path: str
    created: int


class LoraAdapters:
    """The LoRA adapters of ``policy``'s model, by name (see the module docstring)."""

    def __init__(self, policy: TransformersPolicy) -> None:
        self.policy = policy
        self.loaded: dict[str, LoadedAdapter] = {}
        self._base = policy.model

    def __contains__(self, name: object) -> bool:
        return name in self.loaded

    def load(self, name: str, path: str) -> LoadedAdapter:
        """Read the adapter in folder ``path`` into the model as ``name``.

        Raises :class:`AdapterExists` for a name already loaded, :class:`AdapterNotFound` when
        ``path`` holds no ``adapter_config.json``, :class:`AdapterIncompatible` when the adapter
        cannot be put into this model (the model is then left as it was).
        """
        from peft import PeftConfig, PeftModel, load_peft_weights, set_peft_model_state_dict

        if name in self.loaded:
            raise AdapterExists(f"The lora adapter '{name}' has already been loaded; unload it first to load it again.")
        folder = Path(path)
        if not (folder / ADAPTER_CONFIG).is_file():
            raise AdapterNotFound(f"Loading lora {name} failed: No adapter found for {path}")
        try:
            config = PeftConfig.from_pretrained(str(folder))
            weights = load_peft_weights(str(folder), device=str(self.policy.device))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise AdapterIncompatible(f"Loading lora {name} failed: {path} cannot be read: {exc}") from exc
        with self.policy.model_lock:
            first = not self.loaded
            model: Any = None
            try:
                if first:
                    model = PeftModel(self._base, config, adapter_name=name)
                else:
                    model = self.policy.model
                    model.add_adapter(name, config)
                result = set_peft_model_state_dict(model, weights, adapter_name=name)
                unexpected = list(getattr(result, "unexpected_keys", None) or [])
                if unexpected:
                    raise ValueError(f"weights the model has no place for: {', '.join(unexpected[:3])}")
            except Exception as exc:
                self._undo(model, name, first)
                why = " ".join(str(exc).split())[:300]
                raise AdapterIncompatible(
                    f"Loading lora {name} failed: the adapter in {path} does not fit: {why}"
                ) from exc
            model.eval().requires_grad_(False)
            self.policy.model = model
        adapter = LoadedAdapter(name=name, path=str(path), created=int(time.time()))
        self.loaded[name] = adapter
        return adapter

    def unload(self, name: str) -> None:
        """Drop adapter ``name``; :class:`AdapterNotFound` when none by that name is loaded."""
        if name not in self.loaded:
            raise AdapterNotFound(f"The lora adapter '{name}' cannot be found.")
        with self.policy.model_lock:
            if len(self.loaded) == 1:  # peft cannot hold zero adapters: give the base model back
                self.policy.model = self.policy.model.unload()
            else:
                self.policy.model.delete_adapter(name)
        del self.loaded[name]

    def _undo(self, model: Any, name: str, first: bool) -> None:
        """Take a half-loaded adapter out again, so a failed load changes nothing."""
        if model is None:
            return
        if first:
            model.unload()  # strips the LoRA layers the wrapper put into the base model
        elif name in getattr(model, "peft_config", {}):
            model.delete_adapter(name)


__all__ = [
    "AdapterError",
    "AdapterExists",
    "AdapterIncompatible",
    "AdapterNotFound",
    "LoadedAdapter",
    "LoraAdapters",
]
