"""The countable text of request bodies, per API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from addon.metering.prompt_text import pretokenized_count
from addon.providers.wire import prompt_text

WEATHER_PARAMS = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_openai_chat_messages_parts_tool_calls_and_tools() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather", "parameters": WEATHER_PARAMS}}],
    }  # fmt: skip
    text = prompt_text("openai.chat", body)
    assert text.split("\n") == [
        "Be brief.",
        "What is this?",
        "get_weather",
        '{"city":"Paris"}',
        "sunny",
        json.dumps({"name": "get_weather", "description": "Weather", "parameters": WEATHER_PARAMS}),
    ]
    assert "base64" not in text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"prompt": "Say hi", "suffix": "bye"}, "Say hi\nbye"),
        ({"prompt": ["one", "two"]}, "one\ntwo"),
        ({"prompt": [1, 2, 3]}, ""),
    ],
)
def test_legacy_completions_prompt(body: dict[str, Any], text: str) -> None:
    assert prompt_text("openai.completions", body) == text


@pytest.mark.parametrize(
    ("body", "text"),
    [({"input": "embed me"}, "embed me"), ({"input": ["a", "b"]}, "a\nb"), ({"input": [5]}, "")],
)
def test_embeddings_input(body: dict[str, Any], text: str) -> None:
    assert prompt_text("openai.embeddings", body) == text


def test_responses_instructions_input_items_and_tools() -> None:
    body = {
        "instructions": "You are terse.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Hi"},
                                         {"type": "input_image", "image_url": "https://x"}]},
            {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "Done"}]},
        ],
        "tools": [{"type": "function", "name": "lookup", "parameters": {}}],
    }  # fmt: skip
    text = prompt_text("openai.responses", body)
    assert text.split("\n") == [
        "You are terse.",
        "Hi",
        "lookup",
        "{}",
        "42",
        "Done",
        json.dumps({"type": "function", "name": "lookup", "parameters": {}}),
    ]
    assert prompt_text("openai.responses", {"input": "plain"}) == "plain"


@pytest.mark.parametrize("api", ["anthropic.messages", "anthropic.count_tokens"])
def test_anthropic_system_messages_tool_use_results_and_tools(api: str) -> None:
    body = {
        "system": [{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look", "signature": "SIG"},
                {"type": "tool_use", "id": "tu1", "name": "get_weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "tu1",
                 "content": [{"type": "text", "text": "cold"}]},
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
            ]},
        ],
        "tools": [{"name": "get_weather", "input_schema": WEATHER_PARAMS}],
    }  # fmt: skip
    assert prompt_text(api, body).split("\n") == [
        "Sys",
        "Weather?",
        "Let me look",
        "get_weather",
        '{"city": "Oslo"}',
        "cold",
        json.dumps({"name": "get_weather", "input_schema": WEATHER_PARAMS}),
    ]
    assert prompt_text(api, {"system": "plain", "messages": []}) == "plain"


GEMINI_DECLARATION = {"name": "get_weather", "description": "Weather",
                      "parameters": WEATHER_PARAMS}  # fmt: skip


@pytest.mark.parametrize("api", ["gemini.generate", "gemini.stream", "gemini.count_tokens"])
def test_gemini_system_instruction_contents_and_function_declarations(api: str) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "Weather in Oslo?"},
                {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            ]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": -3}}},
            ]},
        ],
        "tools": [{"functionDeclarations": [GEMINI_DECLARATION]}, {"googleSearch": {}}],
        "generationConfig": {"temperature": 0.2, "thinkingConfig": {"thinkingBudget": 512}},
    }  # fmt: skip
    text = prompt_text(api, body)
    assert text.split("\n") == [
        "Be brief.",
        "Weather in Oslo?",
        '{"name": "get_weather", "args": {"city": "Oslo"}}',
        '{"name": "get_weather", "response": {"temp": -3}}',
        json.dumps(GEMINI_DECLARATION),
    ]
    assert "AAAA" not in text and "temperature" not in text


def test_gemini_snake_case_fields_and_a_nested_count_tokens_request() -> None:
    request = {
        "system_instruction": {"parts": [{"text": "Sys"}]},
        "contents": [{"parts": [{"text": "Hi"}]}],
        "tools": [{"function_declarations": [GEMINI_DECLARATION]}],
    }
    assert prompt_text("gemini.generate", request) == "\n".join(
        ["Sys", "Hi", json.dumps(GEMINI_DECLARATION)]
    )
    nested = {"generateContentRequest": {"model": "models/gemini-2.5-flash", **request}}
    assert prompt_text("gemini.count_tokens", nested) == prompt_text("gemini.generate", request)


@pytest.mark.parametrize(
    "body",
    [
        {"contents": "plain"},
        {"contents": {"parts": ["plain"]}},
        {"contents": [{"parts": [{"text": "plain"}, None, 3, {"text": 4}]}, None, ""]},
    ],
)
def test_gemini_lenient_shapes(body: dict[str, Any]) -> None:
    assert prompt_text("gemini.generate", body) == "plain"


@pytest.mark.parametrize(
    "body",
    [{"contents": 5}, {"contents": [{"parts": "x"}]},
     {"tools": [None, {"functionDeclarations": 1}]},
     {"systemInstruction": 3, "generateContentRequest": "x"}],
)  # fmt: skip
def test_gemini_unexpected_shapes_give_no_text(body: dict[str, Any]) -> None:
    assert prompt_text("gemini.generate", body) == ""


@pytest.mark.parametrize(
    "body", [None, [], "text", 3, {"messages": "x"}, {"messages": [None, 1, {"content": 5}]}]
)
def test_unexpected_shapes_give_no_text(body: object) -> None:
    assert prompt_text("openai.chat", body) == ""


def test_deeply_nested_tool_results_do_not_recurse_forever() -> None:
    block: dict[str, Any] = {"type": "text", "text": "leaf"}
    for _ in range(5000):
        block = {"type": "tool_result", "content": [block]}
    body = {"messages": [{"role": "user", "content": [block]}]}
    assert prompt_text("anthropic.messages", body) == ""


@pytest.mark.parametrize(
    ("api", "body", "tokens"),
    [
        ("openai.embeddings", {"input": [1, 2, 3]}, 3),
        ("openai.embeddings", {"input": [[1, 2], [3], []]}, 3),
        ("openai.completions", {"prompt": [7, 8]}, 2),
        ("openai.completions", {"prompt": ["text", [1, 2]]}, 2),
        ("openai.embeddings", {"input": "text"}, 0),
        ("openai.embeddings", {"input": [True, False]}, 0),
        ("openai.chat", {"input": [1, 2, 3]}, 0),
        ("openai.embeddings", None, 0),
    ],
)
def test_pretokenized_inputs_count_their_length(api: str, body: object, tokens: int) -> None:
    assert pretokenized_count(api, body) == tokens
