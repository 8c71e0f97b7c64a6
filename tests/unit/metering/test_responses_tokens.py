"""Responses API prompts counted as the chat prompt they amount to."""

from __future__ import annotations

from addon.metering.chat_tokens import CHATML, GPT_OSS, HARMONY, chat_prompt_tokens
from addon.metering.estimate import get_encoding
from addon.metering.responses_tokens import as_chat, responses_prompt_tokens
from addon.providers.wire import estimate_prompt_tokens

ENCODE = get_encoding("o200k_base").encode_ordinary
TOOL = {"type": "function", "name": "multiply", "description": "Multiply two numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}  # fmt: skip


def test_input_items_become_framed_messages() -> None:
    body = {
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "reasoning", "encrypted_content": "gAAAA"},
            {"type": "function_call", "call_id": "c1", "name": "multiply", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ],
        "tools": [TOOL, {"type": "web_search"}],
        "reasoning": {"effort": "low"},
    }
    chat = as_chat(body)
    assert [m["role"] for m in chat["messages"]] == ["developer", "user", "assistant", "tool"]
    assert chat["tools"] == [{"type": "function", "function": TOOL}]
    assert chat["reasoning_effort"] == "low"


def test_a_string_input_is_one_user_message() -> None:
    body = {"input": "hello world"}
    assert as_chat(body)["messages"] == [{"role": "user", "content": "hello world"}]
    assert responses_prompt_tokens(body, ENCODE, HARMONY) == 2 + 3 + 1 + 2
    assert estimate_prompt_tokens("openai.responses", body, "gpt-5.5") == 2 + 3 + 1 + 2


def test_no_harmony_system_message_for_tools_except_on_gpt_oss() -> None:
    body = {"input": "hello world", "tools": [TOOL]}
    chat = as_chat(body)
    assert (
        responses_prompt_tokens(body, ENCODE, HARMONY)
        == chat_prompt_tokens(chat, ENCODE, CHATML) - 1
    )  # the reply priming: 2 tokens, not 3
    assert responses_prompt_tokens(body, ENCODE, GPT_OSS) == chat_prompt_tokens(
        chat, ENCODE, GPT_OSS
    )
