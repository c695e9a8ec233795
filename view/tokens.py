"""Token ids as the text they stand for, with the run's tokenizer (a trainer's ``init/`` folder, or
``--tokenizer``); without one, or without ``transformers`` installed, each id reads ``<id>``."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=8)
def _tokenizer(folder: Path) -> Any:
    """The tokenizer saved in ``folder``, loaded once; None (with a warning) when it cannot be loaded."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        warnings.warn("transformers is not installed: token ids are shown as <id>", stacklevel=2)
        return None
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # a broken or foreign folder: the ids still show
        why = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"cannot load the tokenizer in {folder} ({why}); token ids are shown as <id>", stacklevel=2)
        return None


def token_texts(ids: Sequence[int], tokenizer: Path | None) -> list[str]:
    """The text of each token of ``ids`` on its own (a byte of a longer character may read as U+FFFD)."""
    loaded = _tokenizer(tokenizer) if tokenizer is not None else None
    if loaded is None:
        return [f"<{i}>" for i in ids]
    return [str(text) for text in loaded.batch_decode([[i] for i in ids])]


def token_list(
    ids: Sequence[int] | None, logprobs: Sequence[float] | None, tokenizer: Path | None
) -> list[dict[str, Any]] | None:
    """A turn's generated tokens as ``{"id", "text", "logprob"}`` (logprob None where not recorded);
    None when the turn recorded no token ids."""
    if ids is None:
        return None
    texts = token_texts(ids, tokenizer)
    probs = list(logprobs or ())
    return [
        {"id": i, "text": text, "logprob": probs[k] if k < len(probs) else None}
        for k, (i, text) in enumerate(zip(ids, texts, strict=True))
    ]
