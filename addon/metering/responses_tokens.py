"""Prompt tokens of a Responses API request, counted as a chat prompt.

The Responses API takes ``instructions``, an ``input`` (a string or a list of items) and
``tools`` with the function fields at the top level. The model sees them as the same framed
messages as a Chat Completions prompt (``chat_tokens.py``), so the request is mapped onto
one: instructions become a developer message, message items keep their role, function calls
become assistant tool calls and their outputs tool messages. Reasoning items come back
encrypted and cannot be counted. The recorded traffic shows no harmony system message for
tools here (unlike Chat Completions on gpt-5), so none is added, except for gpt-oss.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from addon.metering.chat_tokens import GPT_OSS, ChatFormat, Encode, chat_prompt_tokens


def responses_prompt_tokens(body: Mapping[str, Any], encode: Encode, fmt: ChatFormat) -> int:
    if fmt is not GPT_OSS:
        fmt = dataclasses.replace(fmt, preamble="")
    return chat_prompt_tokens(as_chat(body), encode, fmt)


def as_chat(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Chat Completions body a Responses ``body`` amounts to, for counting."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "developer", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items if isinstance(items, list) else ():
        if isinstance(item, Mapping) and (message := _message(item)) is not None:
            messages.append(message)
    tools = body.get("tools")
    functions = [
        {"type": "function", "function": tool}
        for tool in (tools if isinstance(tools, list) else ())
        if isinstance(tool, Mapping) and tool.get("type") == "function"
    ]
    return {"messages": messages, "tools": functions, "reasoning_effort": _effort(body)}


def _message(item: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = item.get("type")
    if kind == "function_call":
        call = {"function": {"name": item.get("name"), "arguments": item.get("arguments")}}
        return {"role": "assistant", "tool_calls": [call]}
    if kind == "function_call_output":
        return {"role": "tool", "content": item.get("output")}
    if isinstance(item.get("role"), str) and kind in (None, "message"):
        return {"role": item["role"], "content": item.get("content")}
    return None  # reasoning (encrypted), built-in tool calls and their results


def _effort(body: Mapping[str, Any]) -> str | None:
    reasoning = body.get("reasoning")
    effort = reasoning.get("effort") if isinstance(reasoning, Mapping) else None
    return effort if isinstance(effort, str) else None
