"""The SearchJudge-v0 expert: honest (reads only observations), judges well, answers the fictional world."""

from __future__ import annotations

from pathlib import Path

from horizongym.agents import expert_for
from horizongym.agents.experts.search import extract, parse_question
from horizongym.training.rollouts import EnvRecipe, RolloutEngine


def test_question_plans() -> None:
    plan = parse_question("Which town is the birthplace of the founder of Vraenoubrig Films twinned with?")
    assert (plan.kind, plan.start, plan.relations, plan.final) == (
        "chain",
        "Vraenoubrig Films",
        ["founder", "birthplace"],
        "twin",
    )
    plan = parse_question('In which city is the label that released the album "Compass in Baebybrig" headquartered?')
    assert (plan.start, plan.relations, plan.final) == ("Compass in Baebybrig", ["publisher"], "hq")
    plan = parse_question(
        'Which came out first, the film "The Meridian of Gukraemere" or the film "The Meridian of Kuzoulund"?'
    )
    assert plan.kind == "comparison" and plan.options == ("The Meridian of Gukraemere", "The Meridian of Kuzoulund")
    assert parse_question("What government position was held by the woman who portrayed Corliss Archer?").kind == "open"


def test_page_extraction() -> None:
    text = (
        "Founded by Todraevel Bryzeiovic in 1985, Kridralund Press is a publishing house "
        "with its headquarters in Drevraegrad."
    )
    assert extract("founder", text) == "Todraevel Bryzeiovic" and extract("hq", text) == "Drevraegrad"
    assert extract("founded", text) == "1985"
    person = "Myvrywen Myvryrin (1905–1952) was a Vaevovian cartographer. Born in Govaeburg in 1905, Myvryrin studied."
    assert extract("birthplace", person) == "Govaeburg" and extract("birth_year", person) == "1905"


def test_expert_answers_the_fictional_world_and_judges_correctly() -> None:
    recipe = EnvRecipe("SearchJudge-v0", {"split": "test", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("SearchJudge-v0"), concurrency=4, progress=False) as engine:
        episodes = engine.run_sync(150)
    assert all(e.termination_reason == "terminated" for e in episodes)
    assert not any(step.error for e in episodes for step in e.steps), "the expert never breaks the protocol"
    assert sum(bool(e.success) for e in episodes) / len(episodes) >= 0.85
    accuracies = [e.steps[-1].info["judge_accuracy"] for e in episodes]
    assert sum(accuracies) / len(accuracies) >= 0.9


def test_expert_plays_the_real_hotpotqa_sample_by_the_rules(hotpot_path: Path) -> None:
    recipe = EnvRecipe("SearchJudge-v0", {"tasks": f"hotpotqa:{hotpot_path}", "split": "all", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("SearchJudge-v0"), concurrency=4, progress=False) as engine:
        episodes = engine.run_sync(100)
    assert all(e.termination_reason == "terminated" for e in episodes)
    assert not any(step.error for e in episodes for step in e.steps)
    assert any(e.success for e in episodes)


def test_expert_ignores_a_system_prompt() -> None:
    recipe = EnvRecipe("SearchJudge-v0", {"split": "test", "task_order": "by_seed"})
    with RolloutEngine(recipe, expert_for("SearchJudge-v0"), system_prompt="Be brief.", progress=False) as engine:
        episodes = engine.run_sync(20)
    assert not any(step.error for e in episodes for step in e.steps)
    assert sum(bool(e.success) for e in episodes) >= 16
