"""The SearchJudge-v0 expert: an honest scripted search agent.

It reads only what the environment shows: the question and the ``<information>`` it gets
back. It plans from the question's wording (which entity to start from, which relations to
follow, which attribute is asked), searches entity names, judges a result useful when it
holds the page of the entity it searched for (or a page whose title the question names),
follows bridge entities hop by hop, and answers with a span extracted from the last page.
Comparison questions look both entities up and compare the extracted values. Questions it
cannot parse fall back to searching the question itself and answering with the best span
of the answer's type. It is the baseline of the environment and a source of SFT data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from horizongym.agents.base import Action, Message
from horizongym.agents.scripted import ScriptedPolicy

NAME = r"[A-Z][\w'’-]*(?: (?:of |in |the |on )?[A-Z][\w'’-]*)*"
_QUESTION = re.compile(r"Question: (.*)\s*$", re.DOTALL)
_INFORMATION = re.compile(r"<information>(.*?)</information>", re.DOTALL)
_DOC = re.compile(r"Doc \d+\(Title: (.*?)\) (.*?)(?=\nDoc \d+\(Title: |\Z)", re.DOTALL)
_SEARCH = re.compile(r"<search>(.*?)</search>", re.DOTALL)
_JUDGE = re.compile(r"<judge>", re.IGNORECASE)
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")

# the question's relation phrases, each leading from one entity to the next
_RELATIONS = {
    "birthplace": r"the birthplace of",
    "employer": r"the employer of",
    "twin": r"the twin town of",
    "founder": r"the founder of",
    "hq": r"the city where",
    "creator": r"the (?:author|director) of|the artist who recorded",
    "publisher": r"the publisher of|the studio that produced|the label that released",
}
# words that help a search find the page of an entity of the kind a relation leads to
_KIND_HINTS = {
    "birthplace": "town",
    "hq": "city",
    "twin": "town",
    "employer": "company",
    "founder": "born",
    "creator": "born",
    "publisher": "founded",
}
# the attribute a question asks for, read from its first words (and last, for "... born?")
_FINALS = (
    ("birth_year", r"^In which year was .* born\?$"),
    ("birthplace", r"^In which (?:town|city) was .* born\?$"),
    ("occupation", r"^What was the occupation of"),
    ("nationality", r"^What nationality was"),
    ("employer", r"^Which organisation did .* work for\?$"),
    ("country", r"^In which country is"),
    ("population", r"^What is the population of"),
    ("founded", r"^In which year was .* founded\?$"),
    ("twin", r"^Which town is .* twinned with\?$"),
    ("founder", r"^Who founded"),
    ("hq", r"^In which city is .* headquartered\?$"),
    ("year", r"^In which year was .* (?:published|released)\?$"),
    ("genre", r"^What genre is"),
    ("creator", r"^(?:Who wrote|Who directed|Which artist recorded)"),
    ("publisher", r"^Which (?:publishing house published|film studio produced|record label released)"),
)
# how a page states each relation or attribute (the first group is the value)
_PAGE_PATTERNS: dict[str, tuple[str, ...]] = {
    "birthplace": (r"[Bb]orn (?:\d{4} )?in ([A-Z][\w'-]+)",),
    "birth_year": (r"[Bb]orn in [A-Z][\w'-]+ in (\d{3,4})", r"\(born (\d{3,4})", r"\((\d{3,4})–"),
    "employer": (rf"working for ({NAME})", rf"worked for ({NAME})", rf"employed by ({NAME})"),
    "occupation": (
        r"was an? ([a-z]+) who",
        r"is an? ([a-z]+) who",
        r"\) (?:was|is) an? [A-Z]\w+ ([a-z]+)\.",
        r"was an? ([a-z]+) of [A-Z]\w+ nationality",
    ),
    "nationality": (r"An? ([A-Z]\w+) by birth", r"of ([A-Z]\w+) nationality", r"\) (?:was|is) an? ([A-Z]\w+) [a-z]+\."),
    "twin": (r"twinned with ([A-Z][\w'-]+)",),
    "country": (r"(?:city|town) of [\d,]+ people in ([A-Z][\w'-]+)", r"(?:city|town) in ([A-Z][\w'-]+)"),
    "population": (r"population of ([\d,]+)", r"(?:city|town) of ([\d,]+) people"),
    "founded": (r"[Ff]ounded (?:by [A-Z][\w' -]+? )?in (\d{3,4})", r"[Ee]stablished in (\d{3,4})"),
    "founder": (rf"[Ff]ounded by ({NAME})", rf"(?:founded|established) in \d{{3,4}} by ({NAME})"),
    "hq": (r"headquartered in ([A-Z][\w'-]+)", r"headquarters in ([A-Z][\w'-]+)", r"based in ([A-Z][\w'-]+)"),
    "year": (r"is an? (\d{4}) ", r"released in (\d{4})", r"published it in (\d{4})"),
    "genre": (r"is an? (?:\d{4} )?([a-z][a-z ]*?) (?:novel|film|album)\b",),
    "creator": (rf"(?:novel|film|album) by ({NAME})", rf"written by ({NAME})", rf"directed by ({NAME})"),
    "publisher": (
        rf"published by ({NAME})",
        rf"({NAME}) first published it",
        rf"produced by ({NAME})",
        rf"released (?:in \d{{4}} )?(?:on|by) ({NAME})",
    ),
    "any_year": (r"\b(1\d{3}|20\d{2})\b",),
    "birth": (r"[Bb]orn in [A-Z][\w'-]+ in (\d{3,4})", r"\(born (\d{3,4})", r"\((\d{3,4})–"),
}
_COMPARE_HINTS = {"birth": "born", "founded": "founded", "population": "population", "year": "released"}
_COMPARISONS = (
    (r"^Who was born first, (.+) or (.+)\?$", "birth", min),
    (r"^Which (?:town )?was founded earlier, (.+) or (.+)\?$", "founded", min),
    (r"^Which has the larger population, (.+) or (.+)\?$", "population", max),
    (r"^Which came out first, (.+) or (.+)\?$", "year", min),
)


@dataclass
class Read:
    """One search the agent made and what came back (None: the text was removed from view)."""

    query: str
    documents: list[tuple[str, str]] | None
    judged: bool = False


@dataclass
class Plan:
    """What the question asks, as far as its wording tells."""

    kind: str  # "chain", "comparison", "yesno" or "open"
    start: str = ""
    relations: list[str] = field(default_factory=list)  # innermost first
    final: str | None = None
    options: tuple[str, ...] = ()
    compare: Any = None
    predicate: str = ""  # what a yes/no or open comparison question says of its options


def _unquote(mention: str) -> str:
    quoted = re.search(r'"(.+?)"', mention)
    return quoted.group(1) if quoted else mention.strip()


def parse_question(question: str) -> Plan:
    question = " ".join(question.split())
    for pattern, attribute, pick in _COMPARISONS:
        match = re.match(pattern, question)
        if match:
            return Plan("comparison", final=attribute, options=(_unquote(match[1]), _unquote(match[2])), compare=pick)
    both = re.match(r"^(?:Are|Is|Were|Was|Do|Does|Did) (.+?) and (.+?) both (.+?)\?$", question)
    if both:
        return Plan("yesno", options=(both[1].removeprefix("the "), both[2].removeprefix("the ")), predicate=both[3])
    either = re.search(r"[,:]?\s*((?:the )?[A-Z\"][^,?]*?),? or ((?:the )?[A-Z\"][^?]*?)\?$", question)
    if either:
        lowered = question.lower()
        direction: Callable[[list[int]], int] | None = None
        if re.search(r"\b(?:first|earlier|earliest|older|oldest|before)\b", lowered):
            direction = min
        elif re.search(r"\b(?:later|latest|younger|youngest|newer|more recent)\b", lowered):
            direction = max
        options = (_unquote(either[1]).removeprefix("the "), _unquote(either[2]).removeprefix("the "))
        value = "any_year" if direction is not None else None
        return Plan("comparison", final=value, options=options, compare=direction, predicate=question)
    final = next((name for name, pattern in _FINALS if re.search(pattern, question)), None)
    positions = sorted(
        ((m.start(), name) for name, pattern in _RELATIONS.items() for m in re.finditer(pattern, question)),
        reverse=True,
    )
    quoted = re.findall(r'"(.+?)"', question)
    names = re.findall(NAME, question[1:])
    start = quoted[-1] if quoted else (names[-1] if names else "")
    if final is None or not start:
        return Plan("open", start=start)
    return Plan("chain", start=start, relations=[name for _, name in positions], final=final)


def extract(attribute: str, text: str) -> str | None:
    """The value a page states for ``attribute``, or None."""
    for pattern in _PAGE_PATTERNS.get(attribute, ()):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    return None


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def parse_reads(messages: list[Message]) -> list[Read]:
    """The searches in the conversation, what each returned, and whether it was judged."""
    reads: list[Read] = []
    for message in messages[1:]:
        content = message.get("content") or ""
        if not isinstance(content, str):
            continue
        if message.get("role") == "assistant":
            if reads and _JUDGE.search(content.split("<search>")[0]):
                reads[-1].judged = True
            query = _SEARCH.search(content)
            if query:
                reads.append(Read(query.group(1).strip(), None))
        elif reads and reads[-1].documents is None:
            information = _INFORMATION.search(content)
            if information:
                reads[-1].documents = [(t.strip(), d.strip()) for t, d in _DOC.findall(information.group(1))]
    return reads


class SearchExpert(ScriptedPolicy):
    """See the module docstring."""

    name = "expert"

    def decide(self, messages: list[Message], tools: list[dict[str, Any]], seed: int | None) -> Action:
        first = next((m.get("content", "") for m in messages if m.get("role") == "user"), "")
        match = _QUESTION.search(first if isinstance(first, str) else "")
        question = match.group(1).strip() if match else ""
        plan = parse_question(question)
        reads = parse_reads(messages)
        judgment = ""
        if reads and not reads[-1].judged and reads[-1].documents is not None:
            judgment = f"<judge>{'Yes' if self._useful(question, plan, reads[-1]) else 'No'}</judge> "
        return Action(text=judgment + self._next_move(question, plan, reads))

    # ----- judging --------------------------------------------------------------------
    @staticmethod
    def _useful(question: str, plan: Plan, read: Read) -> bool:
        titles = [_key(title) for title, _ in read.documents or []]
        if _key(read.query) in titles:
            return True
        asked = _key(question)
        return any(title and len(title) > 3 and f" {title} " in f" {asked} " for title in titles)

    # ----- planning ----------------------------------------------------------------------
    @staticmethod
    def _pages(reads: list[Read]) -> dict[str, str]:
        pages: dict[str, str] = {}
        for read in reads:
            for title, text in read.documents or []:
                pages.setdefault(_key(title), text)
        return pages

    def _next_move(self, question: str, plan: Plan, reads: list[Read]) -> str:
        pages = self._pages(reads)
        searched = {_key(r.query) for r in reads}

        def lookup(entity: str) -> str | None:
            return pages.get(_key(entity))

        def search_or_give_up(entity: str, fallback: str, hint: str) -> str:
            """Search the entity; if its page did not come back, once more with a kind word."""
            for query in (entity, f"{entity} {hint}"):
                if _key(query) not in searched and len(reads) < 4:
                    return f"<search>{query}</search>"
            return f"<answer>{fallback}</answer>"

        if plan.kind in ("comparison", "yesno"):
            option_pages = []
            for option in plan.options:
                page = lookup(option)
                if page is None:
                    return search_or_give_up(option, plan.options[0], _COMPARE_HINTS.get(plan.final or "", ""))
                option_pages.append(page)
            return f"<answer>{self._compare(plan, option_pages)}</answer>"
        if plan.kind == "chain":
            entity, arrived_by = plan.start, ""
            for relation in [*plan.relations, None]:
                page = lookup(entity)
                if page is None:
                    return search_or_give_up(entity, entity, _KIND_HINTS.get(arrived_by, ""))
                if relation is None:
                    return f"<answer>{extract(plan.final or '', page) or entity}</answer>"
                following = extract(relation, page)
                if following is None:
                    return f"<answer>{extract(plan.final or '', page) or entity}</answer>"
                entity, arrived_by = following, relation
            return f"<answer>{entity}</answer>"
        return self._open_question(question, plan, reads, searched)

    @staticmethod
    def _compare(plan: Plan, pages: list[str]) -> str:
        """Pick an option by the values its page states, or by how much of the question it supports."""
        words = [w for w in re.findall(r"\w+", plan.predicate.lower()) if len(w) > 3]

        def support(page: str) -> float:
            text = page.lower()
            return sum(w in text for w in words) / max(1, len(words))

        if plan.kind == "yesno":
            return "yes" if min(support(page) for page in pages) >= 0.5 else "no"
        values = [extract(plan.final, page) if plan.final else None for page in pages]
        if plan.compare is not None and None not in values:
            numbers = [int(str(v).replace(",", "")) for v in values]
            return plan.options[numbers.index(plan.compare(numbers))]
        scores = [support(page) for page in pages]
        return plan.options[scores.index(max(scores))]

    def _open_question(self, question: str, plan: Plan, reads: list[Read], searched: set[str]) -> str:
        """Questions the wording does not reveal: search the question, then the likeliest bridge page."""
        if not reads:
            return f"<search>{question}</search>"
        documents = [doc for read in reads for doc in read.documents or []]
        asked = _key(question)
        outside = [(t, d) for t, d in documents if _key(t) not in asked]
        if len(reads) < 2 and outside and _key(outside[0][0]) not in searched:
            return f"<search>{outside[0][0]}</search>"
        text = " ".join(d for _, d in (outside or documents)[:2])
        lowered = question.lower()
        if re.search(r"\b(?:what year|which year|when)\b", lowered):
            year = _YEAR.search(text)
            if year:
                return f"<answer>{year.group(1)}</answer>"
        if lowered.startswith("how many"):
            number = re.search(r"\b\d[\d,.]*\b", text)
            if number:
                return f"<answer>{number.group(0)}</answer>"
        return f"<answer>{(outside or documents)[0][0] if documents else plan.start or 'unknown'}</answer>"
