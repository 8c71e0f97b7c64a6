"""The countable text of a parsed request body, for offline token estimates.

Text parts, tool calls and tool definitions (as JSON) are collected; images, audio and files
are skipped, since their tokens cannot be counted from the request. Unexpected shapes are
skipped, never raised on. One reader per wire format; the format says which is its own
(``addon.providers.wire.prompt_text``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 32  # nested tool results deeper than this are not counted
_TEXT_FIELDS = ("text", "thinking", "name", "arguments", "output", "refusal")


def openai_prompt_text(api: str, body: object) -> str:
    """The text of an OpenAI-style request body of ``api`` that the provider bills as input.

    Chat ``messages`` (content strings or parts, tool calls) and ``tools``/``functions``;
    legacy completions ``prompt`` (and ``suffix``); embeddings ``input``; Responses
    ``instructions``, ``input`` (string or items) and ``tools``. Token-id lists are not text:
    see :func:`pretokenized_count`.
    """
    if not isinstance(body, Mapping):
        return ""
    parts: list[str] = []
    if api == "openai.completions":
        _strings(body.get("prompt"), parts)
        _add(body.get("suffix"), parts)
    elif api == "openai.embeddings":
        _strings(body.get("input"), parts)
    elif api == "openai.responses":
        _add(body.get("instructions"), parts)
        _content(body.get("input"), parts, 0)
        _tools(body.get("tools"), parts)
    else:  # chat-shaped: openai.chat, openai.other
        _chat(body, parts)
    return "\n".join(parts)


def chat_prompt_text(api: str, body: object) -> str:
    """A chat-shaped body (Anthropic's messages and count_tokens): ``system``, ``messages``
    and ``tools``."""
    if not isinstance(body, Mapping):
        return ""
    parts: list[str] = []
    _chat(body, parts)
    return "\n".join(parts)


def gemini_prompt_text(api: str, body: object) -> str:
    """A Gemini body: ``systemInstruction``, ``contents`` (text parts, function calls and
    responses) and the tools' function declarations (a countTokens body may nest all that in
    ``generateContentRequest``)."""
    if not isinstance(body, Mapping):
        return ""
    parts: list[str] = []
    _gemini(body, parts)
    return "\n".join(parts)


def _chat(body: Mapping[str, Any], parts: list[str]) -> None:
    _content(body.get("system"), parts, 0)
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        _block(message, parts, 0)
    _tools(body.get("tools"), parts)
    _tools(body.get("functions"), parts)


def message_text(message: Mapping[str, Any]) -> str:
    """The countable text of one chat message (its content, tool calls and results), without
    its role and participant name, which the chat framing counts."""
    parts: list[str] = []
    _block({k: v for k, v in message.items() if k not in ("role", "name")}, parts, 0)
    return "\n".join(parts)


def pretokenized_count(api: str, body: object) -> int:
    """Tokens sent already tokenized: legacy ``prompt`` or embeddings ``input`` given as a list
    of token ids, or a list of such lists."""
    if not isinstance(body, Mapping):
        return 0
    key = {"openai.completions": "prompt", "openai.embeddings": "input"}.get(api)
    value = body.get(key) if key else None
    if not isinstance(value, list):
        return 0
    if value and all(_is_token(item) for item in value):
        return len(value)
    return sum(
        len(item)
        for item in value
        if isinstance(item, list) and item and all(_is_token(i) for i in item)
    )


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _add(value: object, parts: list[str]) -> None:
    if isinstance(value, str) and value:
        parts.append(value)


def _strings(value: object, parts: list[str]) -> None:
    if isinstance(value, str):
        _add(value, parts)
    elif isinstance(value, list):
        for item in value:
            _add(item, parts)


def _content(content: object, parts: list[str], depth: int) -> None:
    """A content string, or a list of strings and content blocks / input items."""
    if isinstance(content, str):
        _add(content, parts)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                _add(block, parts)
            else:
                _block(block, parts, depth)


def _block(block: object, parts: list[str], depth: int) -> None:
    """A message, content block, tool call or tool result (OpenAI or Anthropic)."""
    if not isinstance(block, Mapping) or depth > _MAX_DEPTH:
        return
    for field in _TEXT_FIELDS:
        _add(block.get(field), parts)
    if block.get("type") == "tool_use" and "input" in block:
        parts.append(_json(block["input"]))
    function = block.get("function") or block.get("function_call")
    if isinstance(function, Mapping):  # chat tool call / legacy function call
        _block(function, parts, depth + 1)
    tool_calls = block.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else ():
        _block(call, parts, depth + 1)
    if isinstance(block.get("output"), list):  # Responses function_call_output parts
        _content(block["output"], parts, depth + 1)
    _content(block.get("content"), parts, depth + 1)


def _gemini(body: Mapping[str, Any], parts: list[str]) -> None:
    """A Gemini request; the REST API takes camelCase and snake_case field names alike."""
    nested = _field(body, "generateContentRequest", "generate_content_request")
    if isinstance(nested, Mapping):
        _gemini(nested, parts)
    _gemini_content(_field(body, "systemInstruction", "system_instruction"), parts)
    contents = body.get("contents")
    for content in contents if isinstance(contents, list) else [contents]:
        _gemini_content(content, parts)
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        declarations = (
            _field(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, Mapping)
            else None
        )
        for declaration in declarations if isinstance(declarations, list) else ():
            parts.append(_json(declaration))


def _gemini_content(content: object, parts: list[str]) -> None:
    """A ``Content`` (``{"role", "parts": [...]}``), or a bare string."""
    if isinstance(content, str):
        _add(content, parts)
        return
    items = content.get("parts") if isinstance(content, Mapping) else None
    for part in items if isinstance(items, list) else ():
        if isinstance(part, str):
            _add(part, parts)
        elif isinstance(part, Mapping):
            _add(part.get("text"), parts)
            for key in ("functionCall", "function_call", "functionResponse", "function_response"):
                if isinstance(part.get(key), Mapping):
                    parts.append(_json(part[key]))


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _tools(tools: object, parts: list[str]) -> None:
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, Mapping):
            parts.append(_json(tool.get("function", tool)))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
