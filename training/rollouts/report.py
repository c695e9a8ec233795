"""A self-contained HTML page of stored episodes: the summary, then each conversation."""

from __future__ import annotations

import html
import json
from typing import Any

from horizongym.training.rollouts.summary import format_table, summarize
from horizongym.training.rollouts.trajectory import Episode

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
pre{white-space:pre-wrap;word-break:break-word;margin:.2em 0}
details{border:1px solid #ddd;border-radius:6px;margin:.5em 0;padding:.3em .8em}
summary{cursor:pointer}.ok{color:#17803d}.bad{color:#b42318}
.msg{border-left:4px solid #ccc;padding:.1em .6em;margin:.4em 0}
.user{border-color:#4b7bec}.assistant{border-color:#20bf6b}.tool{border-color:#f7b731}.system{border-color:#999}
.role{font-size:12px;color:#666;text-transform:uppercase}.reward{font-size:12px;color:#555}
"""


def _message_html(message: dict[str, Any], reward_note: str) -> str:
    role = str(message.get("role", "?"))
    body = str(message.get("content") or "")
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        body += f"\n→ {function.get('name')}({function.get('arguments')})"
    note = f' <span class="reward">{html.escape(reward_note)}</span>' if reward_note else ""
    fresh = " (fresh context)" if message.get("fresh_context") else ""
    return (
        f'<div class="msg {html.escape(role)}"><div class="role">{html.escape(role)}{fresh}{note}</div>'
        f"<pre>{html.escape(body)}</pre></div>"
    )


def _episode_html(index: int, episode: Episode) -> str:
    mark = {True: '<span class="ok">✔</span>', False: '<span class="bad">✘</span>', None: "·"}[episode.success]
    title = (
        f"{mark} #{index} task {html.escape(str(episode.task_id))} · seed {episode.seed} sample {episode.sample} · "
        f"reward {episode.total_reward:.3f} · {episode.num_turns} turns · "
        f"{html.escape(str(episode.termination_reason))}"
    )
    notes: list[str] = []
    for step in episode.steps:
        parts = ", ".join(f"{k} {v:+.3f}" for k, v in step.reward_components.items())
        notes.append(f"turn {step.turn}: reward {step.reward:+.3f}" + (f" ({parts})" if parts else ""))
    blocks, turn, awaiting_observation = [], 0, False
    for message in episode.messages:
        note = ""
        if message.get("role") == "assistant":
            awaiting_observation = True
        elif awaiting_observation and turn < len(notes):
            note, turn, awaiting_observation = notes[turn], turn + 1, False
        blocks.append(_message_html(message, note))
    error = f'<p class="bad">error: {html.escape(episode.error)}</p>' if episode.error else ""
    opened = " open" if index == 0 else ""
    return f"<details{opened}><summary>{title}</summary>{error}{''.join(blocks)}</details>"


def episodes_html(episodes: list[Episode], title: str) -> str:
    """The whole page as a string."""
    table = html.escape(format_table(summarize(episodes))) if episodes else "no episodes"
    items = "\n".join(_episode_html(i, e) for i, e in enumerate(episodes))
    meta = html.escape(json.dumps({"episodes": len(episodes)}))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<pre data-meta='{meta}'>{table}</pre>{items}</body></html>"
    )
