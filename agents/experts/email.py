"""The EmailInbox-v0 expert: an honest scripted email agent.

It reads only what it is shown: the question, the search results and the emails it opens.
It takes keywords from the question (a quoted subject first, else its rarest-looking words),
turns a date in the question into a one-day filter, searches, reads the best-matching hits,
extracts the answer by the kind of question (a sender, a date, the people copied, an amount,
a place or time named in the body), and cites the email it read. When nothing fits it says
it does not know, which ART·E scores above a wrong answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy
from horizongym.tools import ToolCall

_QUESTION = re.compile(r"Question: ([^\n]*)")
_QUOTED = re.compile(r"[\"“'‘]([^\"”’]{3,}?)[\"”'’](?=[\s?.,]|$)")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_LONG_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December) (\d{1,2}), (\d{4})\b"
)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_STOP = set(
    "a an the of to in on at for from by with about and or is was were be been what which who whom when where why how "
    "did does do send sent email emails mail message subject copied cc date day dollar amount figure give gives state "
    "states named thing this that his her their its my your our".split()
)
_MONEY = re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|thousand|[MKmk]))?")
_EMAIL_FIELD = re.compile(r"^(Message-ID|Date|From|To|Cc|Subject): ?(.*)$", re.MULTILINE)


@dataclass
class Seen:
    """What the agent has gathered from the conversation so far."""

    searches: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    read: dict[str, dict[str, str]] = field(default_factory=dict)


def question_date(question: str) -> date | None:
    iso = _ISO_DATE.search(question)
    if iso:
        return date(int(iso[1]), int(iso[2]), int(iso[3]))
    long = _LONG_DATE.search(question)
    if long:
        return date(int(long[3]), _MONTHS.index(long[1].lower()) + 1, int(long[2]))
    return None


def keywords_of(question: str) -> list[str]:
    """The quoted subject's words if the question quotes one, else the question's content words."""
    quoted = _QUOTED.search(question)
    text = quoted.group(1) if quoted else question
    text = _ISO_DATE.sub(" ", _LONG_DATE.sub(" ", text))
    words = [w for w in re.findall(r"[A-Za-z0-9][\w$.,'-]*[A-Za-z0-9]|\w", text) if w.lower() not in _STOP]
    words = [w.strip(".,") for w in words if len(w.strip(".,")) > 1 and not w.lower().startswith(("re:", "fw:"))]
    return sorted(words, key=len, reverse=True)[:3] if words else []


def parse_email(text: str) -> dict[str, str]:
    fields = {name.lower(): value for name, value in _EMAIL_FIELD.findall(text.split("\n\n", 1)[0])}
    fields["body"] = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    return fields


def gather(messages: list[Message]) -> Seen:
    """Pair the agent's calls with the environment's answers."""
    seen, pending = Seen(), []
    for message in messages[1:]:
        if message.get("role") == "assistant":
            pending = [
                (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or []
            ]
            continue
        content = str(message.get("content") or "")
        if not pending:
            continue
        name, arguments = pending.pop(0)
        if name == "search_emails":
            seen.searches.append(arguments)
            if content.startswith("["):
                seen.results.extend(json.loads(content))
        elif name == "read_email" and content.startswith("Message-ID:"):
            seen.read[arguments["message_id"]] = parse_email(content)
    return seen


_DATE_TEXT = r"(?:[A-Z][a-z]+day, )?([A-Z][a-z]+ \d{1,2}, \d{4})"
# (question pattern, body pattern whose groups, joined, are the answer) for the facts mail states
_BODY_FACTS = (
    (r"^What amount was agreed", r"agreed on (\$[\d,]+)"),
    (r"^In which city will .* be signed", r"sign the contract with us in (.+?) on "),
    (r"^On what date will .* be signed", r"sign the contract with us in .+? on " + _DATE_TEXT),
    (r"^On what date is the .* offsite", r"offsite will be at the .+? in .+? on " + _DATE_TEXT),
    (r"^On what date is the ", r"(?:move the .+? to|meet on) " + _DATE_TEXT),
    (r"^Where is the .* offsite", r"offsite will be at the (.+?) in ([^.]+?) on "),
    (r"^Where is the .* held", r"in the (.+? Room \(\w+\))"),
    (r"^Who leads Project", r"([A-Z][\w'-]+ [A-Z][\w'-]+) will lead it"),
    (r"^What is the budget of Project", r"budget of (\$[\d,]+)"),
)


def answer_from(question: str, email: dict[str, str]) -> str | None:
    """The answer the email gives to the question, by the question's kind."""
    body = email.get("body", "")
    for asked, stated in _BODY_FACTS:
        if re.search(asked, question):
            found = re.search(stated, body)
            return (
                found.group(1).replace(" in ", ", ", 1)
                if found and "offsite" in asked and "Where" in asked
                else (found.group(1) if found else None)
            )
    if question.startswith("Who approved"):
        return email.get("from") if re.search(r"^\s*Approved\b", body, re.M) else None
    if question.startswith("Who was copied"):
        return email.get("cc") or None
    if question.startswith("Who sent"):
        return email.get("from") or None
    if question.startswith("On what date did"):
        return (email.get("date") or "")[:10] or None
    if question.startswith("What dollar amount"):
        label = re.search(r"give for the (.+)\?$", question)
        for line in body.splitlines():
            money = _MONEY.search(line)
            if money and (label is None or label.group(1).lower().split()[0] in line.lower()):
                return money.group(0)
        return None
    if question.startswith("Where does the email"):
        place = re.search(r"^[ \t]*(?:location|where|place|venue)[ \t]*:[ \t]*(\S.*?)[ \t]*$", body, re.I | re.M)
        return place.group(1) if place else None
    return None


def code_of(question: str) -> str | None:
    """The invented name a synthetic question is about (a deal, project, meeting or offsite code)."""
    for pattern in (
        r"\bProject ([A-Z][\w-]+)",
        r"\boffsite at ([A-Z][\w-]+)",
        r"\bthe ([A-Z][\w-]+) (?:deal|contract)\b",
        r"^(?:On what date|Where) is the ([A-Z][\w-]+) ",
    ):
        found = re.search(pattern, question)
        if found:
            return found.group(1)
    return None


class EmailExpert(ScriptedPolicy):
    """See the module docstring."""

    name = "expert"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        first = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
        match = _QUESTION.search(first if isinstance(first, str) else "")
        question = match.group(1).strip() if match else ""
        seen = gather(messages)
        code = code_of(question)
        keywords = [code] if code and not _QUOTED.search(question) else keywords_of(question)
        for message_id, email in seen.read.items():
            answer = answer_from(question, email)
            if answer:
                return self._call("return_final_answer", answer=answer, sources=[message_id])
        unread = [r for r in seen.results if r["message_id"] not in seen.read]
        if unread and len(seen.read) < 6:
            wanted = " ".join(keywords).lower().split()
            best = max(unread, key=lambda r: sum(w in r["subject"].lower() for w in wanted))  # newest first on ties
            return self._call("read_email", message_id=best["message_id"])
        if not seen.searches:
            arguments: dict[str, Any] = {"keywords": keywords or [question[:40]]}
            day = question_date(question)
            if day is not None:
                arguments["sent_after"] = (day - timedelta(days=1)).isoformat()
                arguments["sent_before"] = (day + timedelta(days=2)).isoformat()
            return self._call("search_emails", **arguments)
        if len(seen.searches) == 1 and len(keywords) > 1:
            return self._call("search_emails", keywords=keywords[:1])
        return self._call("return_final_answer", answer="I don't know", sources=[])

    @staticmethod
    def _call(name: str, **arguments: Any) -> Action:
        return Action(tool_calls=[ToolCall(name, arguments)])
