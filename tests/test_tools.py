"""Typed tools, derived schemas, the one parser, and typed errors as observations."""

from __future__ import annotations

import json
import time
from typing import Annotated

import pydantic
import pytest

from horizongym.tools import (
    InvalidArguments,
    InvalidJSON,
    MalformedToolCall,
    Tool,
    ToolCall,
    ToolCallError,
    ToolCrashed,
    ToolSet,
    ToolTimeout,
    UnknownTool,
    parse_action,
    parse_openai_tool_calls,
    render_tool_calls,
    tool,
)


@tool
def search(query: str, top_k: int = 3) -> str:
    """Search the corpus.

    Args:
        query: words to look for.
        top_k: how many documents to return.
    """
    return f"{top_k} results for {query}"


class MoveArgs(pydantic.BaseModel):
    x: Annotated[int, pydantic.Field(ge=0, description="column")]
    y: int


@tool(name="move", timeout_s=0.2)
def move_to(args: MoveArgs) -> str:
    """Move the cursor."""
    return f"at {args.x},{args.y}"


@tool(timeout_s=0.1)
def slow() -> str:
    """Sleeps too long."""
    time.sleep(1.0)
    return "late"


@tool
def crash(n: int) -> str:
    """Always fails."""
    raise ZeroDivisionError("division by zero")


TOOLS = ToolSet.of([search, move_to, slow, crash])


def test_schema_is_derived_from_hints_and_docstring() -> None:
    schema = Tool(search).schema()
    assert schema == {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the corpus.",
            "parameters": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "query": {"type": "string", "description": "words to look for."},
                    "top_k": {"type": "integer", "default": 3, "description": "how many documents to return."},
                },
                "required": ["query"],
            },
        },
    }


def test_pydantic_model_argument_and_options() -> None:
    move = TOOLS.tools["move"]
    params = move.schema()["function"]["parameters"]
    assert params["properties"]["x"] == {"type": "integer", "minimum": 0, "description": "column"}
    assert move.run({"x": 1, "y": 2}) == "at 1,2"


def test_tag_tool_requires_one_string_argument() -> None:
    def two(a: str, b: str) -> str:
        return a + b

    with pytest.raises(TypeError, match="exactly one required"):
        Tool(two, tag=True)
    assert Tool(search, tag=True).tag_argument == "query"


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (ToolCall("nope", {}), UnknownTool, "Available tools: crash, move, search, slow"),
        (ToolCall("search", {}), InvalidArguments, "query: Field required"),
        (ToolCall("search", {"query": "a", "extra": 1}), InvalidArguments, "extra: Extra inputs are not permitted"),
        (ToolCall("move", {"x": -1, "y": 0}), InvalidArguments, "x: Input should be greater than or equal to 0"),
        (ToolCall("slow", {}), ToolTimeout, "no result after 0.1 s"),
        (ToolCall("crash", {"n": 1}), ToolCrashed, "ZeroDivisionError: division by zero"),
    ],
)
def test_errors_become_observations(call: ToolCall, error: type[ToolCallError], fragment: str) -> None:
    result = TOOLS.invoke(call)
    assert isinstance(result.error, error)
    assert fragment in result.content
    assert result.content.startswith(f"Error [{error.kind}]")


def test_hermes_blocks_one_or_several_with_text_around() -> None:
    text = (
        "<think>plan</think> first\n"
        '<tool_call>{"name": "search", "arguments": {"query": "a"}}</tool_call>\n'
        '<tool_call>\n{"name": "move", "arguments": "{\\"x\\": 1, \\"y\\": 2}"}\n</tool_call>'
    )
    parsed = parse_action(text)
    assert [c.name for c in parsed.calls] == ["search", "move"]
    assert parsed.calls[1].arguments == {"x": 1, "y": 2}
    assert parsed.text == "<think>plan</think> first"
    assert not parsed.errors


def test_openai_tool_calls_as_objects_and_as_json_text() -> None:
    calls = [{"id": "call_7", "type": "function", "function": {"name": "search", "arguments": '{"query": "q"}'}}]
    for action in (
        calls,
        {"role": "assistant", "content": None, "tool_calls": calls},
        json.dumps({"tool_calls": calls}),
    ):
        parsed = parse_action(action)
        assert parsed.calls == [ToolCall("search", {"query": "q"}, "call_7")]
    bad = parse_openai_tool_calls([{"function": {"name": "search", "arguments": "{oops"}}])
    assert isinstance(bad.errors[0], InvalidJSON)


def test_tag_actions_only_for_declared_tags() -> None:
    parsed = parse_action("<search> capital of France </search> <move>3</move>", {"search": "query"})
    assert parsed.calls == [ToolCall("search", {"query": "capital of France"})]
    assert "<move>3</move>" in parsed.text
    unclosed = parse_action("<search>no end", {"search": "query"})
    assert isinstance(unclosed.errors[0], MalformedToolCall)


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("<tool_call>{nope}</tool_call>", InvalidJSON, "not valid JSON"),
        ('<tool_call>{"name": "search", "arguments": {}', MalformedToolCall, "not closed"),
        ('<tool_call>["search"]</tool_call>', MalformedToolCall, "must be a JSON object"),
        ('<tool_call>{"arguments": {}}</tool_call>', MalformedToolCall, 'no "name"'),
        ('<tool_call>{"name": "search", "arguments": [1]}</tool_call>', MalformedToolCall, '"arguments" must be'),
    ],
)
def test_malformed_calls_are_typed_errors(text: str, error: type, fragment: str) -> None:
    parsed = parse_action(text)
    assert not parsed.calls
    assert isinstance(parsed.errors[0], error)
    assert fragment in parsed.errors[0].observation()


def test_render_round_trips() -> None:
    calls = [ToolCall("search", {"query": "ü"}), ToolCall("move", {"x": 1, "y": 2})]
    assert parse_action(render_tool_calls(calls)).calls == calls


def test_toolset_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="duplicate tool names"):
        ToolSet.of([search, search])


def test_nested_tags_read_the_same_whatever_the_declaration_order() -> None:
    text = "<search>who <answer>x</answer></search> <answer>42</answer>"
    one = parse_action(text, {"search": "query", "answer": "value"})
    other = parse_action(text, {"answer": "value", "search": "query"})
    assert (
        one.calls
        == other.calls
        == [
            ToolCall("search", {"query": "who <answer>x</answer>"}),
            ToolCall("answer", {"value": "42"}),
        ]
    )


def test_a_json_list_of_calls_in_one_block() -> None:
    text = (
        'calling <tool_call>[\n{"name": "search", "arguments": {"query": "a"}},\n'
        '{"name": "move", "arguments": {"x": 1, "y": 2}}\n]</tool_call>'
    )
    parsed = parse_action(text)
    assert parsed.calls == [ToolCall("search", {"query": "a"}), ToolCall("move", {"x": 1, "y": 2})]
    assert parsed.text == "calling" and not parsed.errors
    empty = parse_action("<tool_call>[]</tool_call>")
    assert not empty.calls and not empty.errors and empty.text == ""
    mixed = parse_action('<tool_call>[{"name": "search", "arguments": {}}, "move"]</tool_call>')
    assert [c.name for c in mixed.calls] == ["search"]
    assert isinstance(mixed.errors[0], MalformedToolCall)


def test_a_fenced_json_call_when_there_is_no_block() -> None:
    one = parse_action('Sure.\n```json\n{"name": "search", "arguments": {"query": "q"}}\n```\nDone.')
    assert one.calls == [ToolCall("search", {"query": "q"})]
    assert one.text == "Sure.\n\nDone." and not one.errors
    several = parse_action('```JSON\n[{"name": "search", "arguments": {}}, {"name": "move", "arguments": {}}]\n```')
    assert [c.name for c in several.calls] == ["search", "move"]
    data = parse_action('The result:\n```json\n{"name": "Ada", "age": 36}\n```')  # JSON, but no call
    assert not data.calls and not data.errors and '"age": 36' in data.text
    code = parse_action('```python\n{"name": "search", "arguments": {}}\n```')  # fenced, but not json
    assert not code.calls and not code.errors
    block_wins = parse_action(
        '```json\n{"name": "move", "arguments": {}}\n```\n<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    )
    assert [c.name for c in block_wins.calls] == ["search"]
