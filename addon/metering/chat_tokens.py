"""Prompt tokens of a Chat Completions request as OpenAI-tokenized models count them.

A provider does not bill the text of the messages alone: each message is framed by special
tokens and its role, the reply is primed with an assistant header, and tool definitions are
rendered into the prompt as a TypeScript-like ``namespace functions { ... }`` block.

Two chat formats are modelled:

- ChatML (gpt-3.5, gpt-4, gpt-4o, gpt-4.1): ``<|im_start|>role<|im_sep|>text<|im_end|>``,
  3 framing tokens per message plus the role; ``name`` costs one more; the reply is primed
  with 3 tokens (the figures of OpenAI's cookbook, "How to count tokens with tiktoken").
- Harmony (gpt-5, the o-series, gpt-oss): ``<|start|>role<|message|>text<|end|>``, likewise 3
  plus the role, but the reply is primed with 2 (``<|start|>assistant``). gpt-oss servers
  (Groq, OpenRouter…) also prepend the model's own system message (identity, dates,
  reasoning effort, channels), which the provider counts as input.

Tool calls of earlier assistant turns are counted as their name and arguments, tool results
as text. The result is an estimate: images, audio and files are not counted, and models of
other families (Claude, Gemini, Llama…) use other tokenizers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from addon.metering.prompt_text import message_text

Encode = Callable[[str], list[int]]


# The harmony system message (openai/harmony's SystemContent), dates and effort filled in as
# servers do. gpt-oss servers always send it; for gpt-5 and the o-series the recorded traffic
# shows it (the channels tool calls must use) only when the request defines tools.
_HARMONY_SYSTEM = (
    "You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: 2025-08-05\n\n"
    "Reasoning: {effort}\n\n"
    "# Valid channels: analysis, commentary, final. "
    "Channel must be included for every message.{tools_note}"
)


@dataclass(frozen=True)
class ChatFormat:
    per_message: int  # framing tokens around each message, besides its role
    reply: int  # tokens that prime the assistant's reply
    preamble: str = ""  # a system message the server adds, "" for none
    preamble_without_tools: bool = True  # False: only added when tools are defined


CHATML = ChatFormat(per_message=3, reply=3)
HARMONY = ChatFormat(per_message=3, reply=2, preamble=_HARMONY_SYSTEM, preamble_without_tools=False)
GPT_OSS = ChatFormat(per_message=3, reply=2, preamble=_HARMONY_SYSTEM)
_TOOLS_NOTE = "\nCalls to these tools must go to the commentary channel: 'functions'."


def chat_format(model: str | None) -> ChatFormat:
    bare = (model or "").rsplit("/", 1)[-1].lower()
    if bare.startswith("gpt-oss"):
        return GPT_OSS
    if bare.startswith(("gpt-5", "o1", "o3", "o4")):
        return HARMONY
    return CHATML


def chat_prompt_tokens(body: Mapping[str, Any], encode: Encode, fmt: ChatFormat) -> int:
    """Input tokens of a Chat Completions ``body``: messages with their framing, tool
    definitions and the reply priming."""
    messages = body.get("messages")
    messages = [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []
    tools = _functions(body)
    total = fmt.reply
    if fmt.preamble and (tools or fmt.preamble_without_tools):
        effort = body.get("reasoning_effort")
        preamble = fmt.preamble.format(
            effort=effort if isinstance(effort, str) else "medium",
            tools_note=_TOOLS_NOTE if tools else "",
        )
        total += fmt.per_message + len(encode("system")) + len(encode(preamble))
    if tools:
        total += fmt.per_message + len(encode("developer")) + len(encode(render_tools(tools)))
    for message in messages:
        total += fmt.per_message + _message_tokens(message, encode)
    return total


def _message_tokens(message: Mapping[str, Any], encode: Encode) -> int:
    role = message.get("role")
    tokens = len(encode(role)) if isinstance(role, str) else 0
    name = message.get("name")
    if isinstance(name, str) and name:
        tokens += 1 + len(encode(name))
    text = message_text(message)
    if role == "assistant" and message.get("tool_calls"):
        # the thinking a client echoes back with a tool call is not rendered into the prompt
        # (seen on gpt-oss: Groq bills it only when the message carries no tool call)
        text = _THINK.sub("", text)
    return tokens + (len(encode(text)) if text else 0)


_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL)


def _functions(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Function definitions from ``tools`` (type function) and legacy ``functions``."""
    found: list[Mapping[str, Any]] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping):
            found.append(tool["function"])
    functions = body.get("functions")
    for function in functions if isinstance(functions, list) else ():
        if isinstance(function, Mapping):
            found.append(function)
    return found


def render_tools(functions: list[Mapping[str, Any]]) -> str:
    """The ``namespace functions`` block the model sees for these definitions."""
    lines = ["# Tools", "", "## functions", "", "namespace functions {", ""]
    for function in functions:
        description = function.get("description")
        if isinstance(description, str) and description:
            lines.append(f"// {description}")
        params = function.get("parameters")
        params = params if isinstance(params, Mapping) else {}
        props = params.get("properties")
        name = function.get("name")
        if isinstance(props, Mapping) and props:
            lines.append(f"type {name} = (_: {{")
            lines += _properties(props, params.get("required"), 0)
            lines.append("}) => any;")
        else:
            lines.append(f"type {name} = () => any;")
        lines.append("")
    lines.append("} // namespace functions")
    return "\n".join(lines)


_MAX_DEPTH = 16  # nested schemas deeper than this are rendered as "any"


def _properties(props: Mapping[str, Any], required: object, depth: int) -> list[str]:
    needed = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
    lines = []
    for key, schema in props.items():
        spec = schema if isinstance(schema, Mapping) else {}
        description = spec.get("description")
        if isinstance(description, str) and description:
            lines.append(f"// {description}")
        optional = "" if key in needed else "?"
        lines.append(f"{key}{optional}: {_type(spec, depth + 1)},")
    return lines


def _type(spec: Mapping[str, Any], depth: int) -> str:
    if depth > _MAX_DEPTH:
        return "any"
    enum = spec.get("enum")
    if isinstance(enum, list) and enum:
        return " | ".join(json.dumps(v, default=str) for v in enum)
    kind = spec.get("type")
    if kind == "array":
        items = spec.get("items")
        return f"{_type(items, depth + 1) if isinstance(items, Mapping) else 'any'}[]"
    if kind == "object" and isinstance(spec.get("properties"), Mapping):
        inner = _properties(spec["properties"], spec.get("required"), depth)
        return "{\n" + "\n".join(inner) + "\n}"
    if kind == "integer":
        return "number"
    return kind if isinstance(kind, str) else "any"
