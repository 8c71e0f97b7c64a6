"""A provider is one module: nothing in addon/ or cli/ outside providers/ and the meters names one.

The hooks, the records, the errors and the rest ask a ``Provider`` (``render_error``,
``request_id_header``, ``injects_include_usage``) or the wire formats (``addon.providers.wire``)
instead of switching on ``provider.name == "anthropic"`` or ``api.startswith("gemini.")``. This
test reads every module's AST and fails on a string literal that is a built-in provider's name
or starts with a wire format's api prefix (``"openai.chat"``), docstrings aside. What may
legitimately name one is allowed below, per file, with the reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from addon.providers.registry import PROVIDERS
from addon.providers.wire import FORMATS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (ROOT / "addon", ROOT / "cli")
OWNERS = ("addon/providers", "addon/metering", "addon/migrations")  # migrations: frozen history

# file -> (the literals it may hold, why)
ALLOWED: dict[str, tuple[frozenset[str], str]] = {
    "addon/pricing/table.py": (
        frozenset({"together", "fireworks", "azure", "openai"}),
        "price data: how the bundled price list spells providers, and Azure priced as OpenAI",
    ),
    "addon/store/models.py": (
        frozenset({"openai"}),
        "the custom_providers.wire_format column's default (a stored value, not a switch)",
    ),
    "cli/serve.py": (
        frozenset({"openai", "anthropic", "gemini"}),
        "the providers with a --NAME-port option of their own (the public CLI, DESIGN.md)",
    ),
}

NAMES = frozenset(PROVIDERS) | frozenset(FORMATS)
PREFIXES = tuple(f"{prefix}." for prefix in FORMATS)


def named(value: str) -> bool:
    return value.lower() in NAMES or value.lower().startswith(PREFIXES)


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def literals(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or id(node) in skip:
            continue
        if isinstance(node.value, str) and named(node.value):
            yield node.lineno, node.value


def offenders(*roots: Path) -> list[str]:
    found = []
    for path in sorted(p for root in roots or PACKAGES for p in root.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(OWNERS):
            continue
        allowed = ALLOWED.get(rel, (frozenset(), ""))[0]
        found += [f"{rel}:{n}: {v!r}" for n, v in literals(path) if v not in allowed]
    return found


def test_nothing_outside_providers_and_meters_names_a_provider() -> None:
    assert offenders() == []


def test_the_allow_list_is_kept_honest() -> None:
    for rel, (allowed, reason) in ALLOWED.items():
        assert reason, rel
        present = {v for _, v in literals(ROOT / rel)}
        assert allowed <= present, f"{rel}: {sorted(allowed - present)} no longer there"


def test_the_scan_finds_a_switch_on_a_provider(tmp_path: Path) -> None:
    sample = tmp_path / "addon" / "sample.py"
    sample.parent.mkdir()
    sample.write_text(
        '"""Mentions gemini in prose, which is fine."""\n'
        "def f(api: str, name: str) -> bool:\n"
        '    log = f"the {name} upstream"\n'
        '    return api.startswith("gemini.") or name == "anthropic"\n'
    )
    assert sorted(v for _, v in literals(sample)) == ["anthropic", "gemini."]
