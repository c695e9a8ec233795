"""One episode as the episode view reads it: its ROW, the whole record, one TURN per step, and EXTRAS.

A TURN is ``{"turn", "advantage", "tokens", "prompt_tokens", "completion_tokens", "team_svg"}``: the
advantage the trainer credited the turn with (``Step.advantage``; null outside training), the
generated tokens with their text and sampled log-probs (null when the turn recorded no token ids),
the token counts of the prompt and the completion (null when not recorded), and for a team's turn
the SVG of which agents spoke and which messages each read (:func:`~horizongym.agents.team.picture.turn_svg`
of the step's ``policy_trace``; null for any other policy).
"""

from __future__ import annotations

from typing import Any

from horizongym.agents.team.picture import is_team_trace, turn_svg
from horizongym.training.rollouts.trajectory import Step
from horizongym.view.catalog import Run
from horizongym.view.extras import episode_extras
from horizongym.view.tokens import token_list


def turn_view(step: Step, run: Run) -> dict[str, Any]:
    return {
        "turn": step.turn,
        "advantage": step.advantage,
        "tokens": token_list(step.token_ids, step.logprobs, run.tokenizer),
        "prompt_tokens": len(step.prompt_token_ids) if step.prompt_token_ids is not None else None,
        "completion_tokens": len(step.token_ids) if step.token_ids is not None else None,
        "team_svg": turn_svg(step.policy_trace) if step.policy_trace and is_team_trace(step.policy_trace) else None,
    }


def episode_view(run: Run, n: int) -> dict[str, Any]:
    """The payload of ``GET /api/runs/RID/episodes/N``."""
    episode = run.episode(n)
    return {
        "row": run.index.rows[n],
        "episode": episode.model_dump(mode="json"),
        "turns": [turn_view(step, run) for step in episode.steps],
        "extras": episode_extras(episode),
    }
