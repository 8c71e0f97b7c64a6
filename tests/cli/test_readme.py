"""The README's CLI reference must be what ``scripts/gen_cli_docs.py`` generates now."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gen(monkeypatch) -> ModuleType:
    monkeypatch.setenv("COLUMNS", "100")
    return _generator()


def test_readme_cli_reference_is_up_to_date(gen):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if gen.replace_block(readme, gen.render()) != readme:
        pytest.fail(
            "README.md's CLI reference differs from the commands' --help; "
            "run .venv/bin/python scripts/gen_cli_docs.py",
            pytrace=False,
        )


def test_reference_covers_every_command_and_is_deterministic(gen, monkeypatch):
    block = gen.render()
    for path in ("tollkeeper keys create", "tollkeeper providers add", "tollkeeper usage"):
        assert f"### `{path}`" in block
    monkeypatch.setenv("COLUMNS", "40")
    assert gen.render() == block
    assert max(len(line) for line in block.splitlines()) <= 100


def test_replace_block_keeps_the_text_around_the_markers(gen):
    text = f"intro\n{gen.START}\nold\n{gen.END}\noutro\n"
    assert gen.replace_block(text, "new\n") == f"intro\n{gen.START}\nnew\n{gen.END}\noutro\n"
