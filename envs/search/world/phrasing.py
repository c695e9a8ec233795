"""How a world's questions are worded: the first entity by name, each hop as a noun phrase.

A bridge question nests one noun phrase per hop around the first entity's name ("the city
where the studio that produced the film "X" is headquartered") and ends with the question
for the last entity's attribute; later entities are never named. Comparison questions
(:data:`COMPARISONS`) name both entities.
"""

from __future__ import annotations

from horizongym.envs.search.world.entities import Entity
from horizongym.envs.search.world.layout import ORG, PERSON, PLACE, WORK
from horizongym.envs.search.world.vocabulary import WORK_KINDS

__all__ = ["COMPARISONS", "COMPARISON_VALUE", "answer_aliases", "final_question", "mention", "relation_phrase"]


def mention(ent: Entity) -> str:
    """How a question names its first entity: by its exact name (works also by kind, quoted)."""
    return f'the {WORK_KINDS[ent.subkind]} "{ent.name}"' if ent.kind == WORK else ent.name


def relation_phrase(ent: Entity, relation: str, np_: str) -> str:
    """A noun phrase for the entity that ``relation`` leads to from ``ent`` (described by ``np_``)."""
    if ent.kind == PERSON:
        return f"the birthplace of {np_}" if relation == "birthplace" else f"the employer of {np_}"
    if ent.kind == PLACE:
        return f"the twin town of {np_}"
    if ent.kind == ORG:
        return f"the founder of {np_}" if relation == "founder" else f"the city where {np_} is headquartered"
    if relation == "creator":
        return (f"the author of {np_}", f"the director of {np_}", f"the artist who recorded {np_}")[ent.subkind]
    return (f"the publisher of {np_}", f"the studio that produced {np_}", f"the label that released {np_}")[ent.subkind]


def final_question(ent: Entity, attribute: str, np_: str) -> str:
    """The question that asks for ``attribute`` of ``ent``, described by the noun phrase ``np_``."""
    if ent.kind == PERSON:
        return {
            "birth_year": f"In which year was {np_} born?",
            "occupation": f"What was the occupation of {np_}?",
            "nationality": f"What nationality was {np_}?",
            "birthplace": f"In which town was {np_} born?",
            "employer": f"Which organisation did {np_} work for?",
        }[attribute]
    if ent.kind == PLACE:
        return {
            "country": f"In which country is {np_}?",
            "population": f"What is the population of {np_}?",
            "founded": f"In which year was {np_} founded?",
            "twin": f"Which town is {np_} twinned with?",
        }[attribute]
    if ent.kind == ORG:
        return {
            "founded": f"In which year was {np_} founded?",
            "founder": f"Who founded {np_}?",
            "hq": f"In which city is {np_} headquartered?",
        }[attribute]
    verb = ("published", "released", "released")[ent.subkind]
    return {
        "year": f"In which year was {np_} {verb}?",
        "genre": f"What genre is {np_}?",
        "creator": (f"Who wrote {np_}?", f"Who directed {np_}?", f"Which artist recorded {np_}?")[ent.subkind],
        "publisher": (
            f"Which publishing house published {np_}?",
            f"Which film studio produced {np_}?",
            f"Which record label released {np_}?",
        )[ent.subkind],
    }[attribute]


def answer_aliases(attribute: str, value: str) -> tuple[str, ...]:
    """The accepted answers for ``value``: a population also without its thousands separators."""
    if attribute == "population":
        return (value, value.replace(",", ""))
    return (value,)


# comparison: (entity type, attribute, question template, True if the smaller value wins)
COMPARISONS = (
    (PERSON, "birth", "Who was born first, {a} or {b}?", True),
    (ORG, "founded", "Which was founded earlier, {a} or {b}?", True),
    (PLACE, "founded", "Which town was founded earlier, {a} or {b}?", True),
    (PLACE, "population", "Which has the larger population, {a} or {b}?", False),
    (WORK, "year", "Which came out first, {a} or {b}?", True),
)
COMPARISON_VALUE = {(PERSON, "birth"): "birth_year", (ORG, "founded"): "founded", (PLACE, "founded"): "founded"}
