"""Chat Completions prompts counted as OpenAI-tokenized models see them."""

from __future__ import annotations

from typing import Any

import pytest

from addon.metering.chat_tokens import (
    CHATML,
    GPT_OSS,
    HARMONY,
    chat_format,
    chat_prompt_tokens,
    render_tools,
)
from addon.metering.estimate import get_encoding

ENCODE = get_encoding("o200k_base").encode_ordinary
HELLO = [{"role": "user", "content": "hello world"}]  # 2 tokens of text, 1 of role
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    },
}


def tokens(body: dict[str, Any], model: str) -> int:
    return chat_prompt_tokens(body, ENCODE, chat_format(model))


@pytest.mark.parametrize(
    ("model", "fmt"),
    [("gpt-4o", CHATML), ("gpt-4.1-mini", CHATML), ("gpt-3.5-turbo", CHATML),
     ("gpt-5-mini", HARMONY), ("o3", HARMONY), ("openai/gpt-5", HARMONY),
     ("openai/gpt-oss-120b", GPT_OSS), (None, CHATML)],
)  # fmt: skip
def test_chat_format_by_model(model: str | None, fmt: object) -> None:
    assert chat_format(model) is fmt


def test_each_message_is_framed_with_its_role_and_the_reply_is_primed() -> None:
    assert tokens({"messages": HELLO}, "gpt-4o") == 2 + 3 + 1 + 3
    assert tokens({"messages": HELLO}, "gpt-5-mini") == 2 + 3 + 1 + 2
    two = [{"role": "system", "content": "be brief"}, *HELLO]
    assert tokens({"messages": two}, "gpt-4o") == tokens({"messages": HELLO}, "gpt-4o") + 3 + 1 + 2


def test_a_participant_name_costs_one_token_more_than_its_text() -> None:
    named = [{**HELLO[0], "name": "bob"}]
    assert tokens({"messages": named}, "gpt-4o") == tokens({"messages": HELLO}, "gpt-4o") + 2


def test_tool_definitions_are_rendered_as_the_model_sees_them() -> None:
    assert render_tools([TOOL["function"]]) == "\n".join(
        [
            "# Tools", "", "## functions", "", "namespace functions {", "",
            "// Weather in a city",
            "type get_weather = (_: {",
            "// The city",
            "city: string,",
            'unit?: "c" | "f",',
            "days?: number[],",
            "}) => any;",
            "",
            "} // namespace functions",
        ]
    )  # fmt: skip
    plain = tokens({"messages": HELLO}, "gpt-4o")
    with_tool = tokens({"messages": HELLO, "tools": [TOOL]}, "gpt-4o")
    rendered = len(ENCODE(render_tools([TOOL["function"]])))
    assert with_tool == plain + 3 + len(ENCODE("developer")) + rendered
    legacy = tokens({"messages": HELLO, "functions": [TOOL["function"]]}, "gpt-4o")
    assert legacy == with_tool


def test_non_function_tools_are_not_rendered() -> None:
    body = {"messages": HELLO, "tools": [{"type": "openrouter:web_search"}]}
    assert tokens(body, "gpt-4o") == tokens({"messages": HELLO}, "gpt-4o")


def test_gpt_oss_servers_add_the_harmony_system_message() -> None:
    plain = tokens({"messages": HELLO}, "gpt-4o")
    low = tokens({"messages": HELLO, "reasoning_effort": "low"}, "openai/gpt-oss-120b")
    assert low > plain + 40  # identity, dates, reasoning effort, channels
    high = tokens({"messages": HELLO, "reasoning_effort": "high"}, "openai/gpt-oss-120b")
    assert high == low  # "low" and "high" are one token each


def test_gpt_5_adds_the_harmony_system_message_only_with_tools() -> None:
    assert tokens({"messages": HELLO}, "gpt-5-mini") == 2 + 3 + 1 + 2
    with_tool = tokens({"messages": HELLO, "tools": [TOOL]}, "gpt-5-mini")
    assert with_tool > tokens({"messages": HELLO, "tools": [TOOL]}, "gpt-4o") + 40


def test_tool_calls_and_results_are_counted() -> None:
    call = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
    body = {"messages": [*HELLO, call, result]}
    assert tokens(body, "gpt-4o") > tokens({"messages": HELLO}, "gpt-4o") + 2 * 3 + 10


def test_thinking_echoed_with_a_tool_call_is_not_counted() -> None:
    think = "<think>" + "lots of deliberation " * 20 + "</think>"
    call = {
        "role": "assistant",
        "content": think,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    bare = {**call, "content": None}
    assert tokens({"messages": [call]}, "gpt-oss-20b") == tokens(
        {"messages": [bare]}, "gpt-oss-20b"
    )
    answer = {"role": "assistant", "content": think}
    assert tokens({"messages": [answer]}, "gpt-oss-20b") > 100  # fmt: skip


def test_unexpected_shapes_are_skipped_not_raised_on() -> None:
    body: dict[str, Any] = {"messages": [None, 3, {"role": 7, "content": {"x": 1}}], "tools": "x"}
    assert tokens(body, "gpt-4o") == 3 + 3


def test_odd_schemas_are_rendered_without_raising() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(200):
        deep = {"type": "object", "properties": {"x": deep}}
    props = {"x": deep, "y": "not a schema", "z": {"enum": [1, None, {"k": 2}]}}
    odd = {"name": "f", "parameters": {"type": "object", "required": [{"a": 1}, "x"],
                                       "properties": props}}  # fmt: skip
    rendered = render_tools([odd])
    assert "x: {" in rendered and "y?: any," in rendered and 'z?: 1 | null | {"k": 2},' in rendered
    assert tokens({"messages": HELLO, "tools": [{"type": "function", "function": odd}]}, "gpt-4o")
