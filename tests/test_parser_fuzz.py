"""Property tests: no text, however odd, makes the parser or an environment raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import horizongym
from horizongym.tools import parse_action

FRAGMENTS = st.sampled_from(
    [
        "<tool_call>",
        "</tool_call>",
        "{",
        "}",
        "[",
        "]",
        '"name"',
        '"arguments"',
        ":",
        ",",
        '"',
        "\\",
        "<lookup>",
        "</lookup>",
        "<answer>",
        "null",
        "1e999",
        "[" * 50,
        "\x00",
        "😀",
        "tool_calls",
        '"function"',
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=20), FRAGMENTS), max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_parser_never_raises(text: str) -> None:
    parsed = parse_action(text, {"lookup": "key", "answer": "value"})
    assert isinstance(parsed.text, str)
    for call in parsed.calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    )
)
def test_parser_never_raises_on_structures(value: object) -> None:
    parse_action(value)
    parse_action({"tool_calls": value})
    parse_action([{"function": value}])


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    parsed = parse_action("<tool_call>" + "[" * 100_000 + "</tool_call>")
    assert parsed.errors and not parsed.calls


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=6))
def test_env_turns_any_text_into_an_observation(actions: list[str]) -> None:
    env = horizongym.make("KeyChain-v0")
    env.reset(seed=0)
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        assert isinstance(observation, str) and observation
        assert sum(info["reward_components"].values()) == reward
        if terminated or truncated:
            break
