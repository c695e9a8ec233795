"""The demo's tiny byte-level model: a fresh one (weights fixed by a seed) or a saved one, both with
a plain ChatML template that does not render the tool schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from horizongym.training.demo.settings import DemoSettings

CHATML_TEMPLATE = """\
{#- the tools are not rendered: the SearchJudge protocol is tags the episodes teach -#}
{%- for message in messages -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
"""
"""ChatML without the tool schemas: the SearchJudge protocol is tags the env's prompt explains.

It names ``tools`` (in a comment) on purpose: a template that mentions tools is left to render them
itself (``agents.tool_prompt.template_takes_tools``), and this one leaves them out, so a policy's
prompts are the SFT rows' prompts, which are rendered without tools."""


def build_model(folder: Path, settings: DemoSettings, seed: int) -> tuple[Any, Any]:
    """A fresh tiny model (weights fixed by ``seed``) and its byte-level tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from horizongym.agents.tiny import build_tiny_model

    build_tiny_model(
        folder,
        seed=seed,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        num_heads=settings.num_heads,
    )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model, tokenizer


def load_model(folder: Path) -> tuple[Any, Any]:
    """A model and tokenizer saved with ``save_pretrained`` (the SFT checkpoint)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHATML_TEMPLATE
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tokenizer
