"""An LLM judge of answers, through any OpenAI-compatible chat-completions endpoint.

Configured as ``openai:URL#MODEL`` (key from ``OPENAI_API_KEY``). The judge sees the question,
the reference answer and the agent's answer, and must reply ``yes`` or ``no``. It is called
from inside an environment step, so it is synchronous (the rollout engine runs such steps in
its thread pool); it retries 429/5xx and connection failures with exponential backoff.
"""

from __future__ import annotations

import os
import time

import httpx

_PROMPT = (
    "You grade answers to questions about a person's email. Reply with exactly one word: yes if "
    "the candidate answer gives the same information as the reference answer (wording, format "
    "and extra detail may differ), otherwise no.\n\nQuestion: {question}\nReference answer: "
    "{reference}\nCandidate answer: {candidate}"
)


class JudgeError(RuntimeError):
    """The judge endpoint could not be reached or answered nonsense."""


class LLMJudge:
    """``judge(question, reference, candidate) -> bool`` via an OpenAI-compatible server."""

    def __init__(self, spec: str, *, timeout_s: float = 60.0, max_retries: int = 3) -> None:
        url, sep, model = spec.removeprefix("openai:").partition("#")
        if not spec.startswith("openai:") or not sep or not model:
            raise ValueError(f"bad judge {spec!r}: write openai:URL#MODEL")
        self.url, self.model, self.max_retries = url.rstrip("/") + "/chat/completions", model, max_retries
        key = os.environ.get("OPENAI_API_KEY")
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {key}"} if key else {})

    def __call__(self, question: str, reference: str, candidate: str) -> bool:
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 3,
            "messages": [
                {"role": "user", "content": _PROMPT.format(question=question, reference=reference, candidate=candidate)}
            ],
        }
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                if attempt == self.max_retries:
                    raise JudgeError(f"cannot reach the judge at {self.url}: {exc}") from exc
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status_code in (429, 500, 502, 503, 504) and attempt < self.max_retries:
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status_code >= 400:
                raise JudgeError(f"the judge at {self.url} answered HTTP {response.status_code}: {response.text[:200]}")
            try:
                verdict = str(response.json()["choices"][0]["message"]["content"] or "")
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise JudgeError(f"unreadable judge reply: {response.text[:200]}") from exc
            return verdict.strip().lower().startswith("yes")
        raise JudgeError(f"no answer from the judge at {self.url}")

    def close(self) -> None:
        self._client.close()
