import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "update_prices.py"


@pytest.fixture(scope="module")
def update_prices():
    spec = importlib.util.spec_from_file_location("update_prices", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LITELLM = {
    "sample_spec": {"input_cost_per_token": 0.0, "mode": "one of: chat, embedding"},
    "gpt-4o-mini": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "cache_read_input_token_cost": 7.5e-08,
        "input_cost_per_token_batches": 7.5e-08,
        "output_cost_per_token_priority": 1e-06,
        "input_cost_per_audio_token": 1e-05,
        "supports_vision": True,
    },
    "claude-x": {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "cache_creation_input_token_cost_above_12hr": 9e-06,
    },
    "gemini/pro": {
        "litellm_provider": "gemini",
        "mode": "chat",
        "input_cost_per_token": 1.25e-06,
        "output_cost_per_token": 1e-05,
        "output_cost_per_reasoning_token": 1e-05,
        "input_cost_per_token_above_200k_tokens": 2.5e-06,
        "input_cost_per_token_above_200k_tokens_priority": 4.5e-06,
    },
    "xai/grok": {
        "litellm_provider": "xai",
        "mode": "chat",
        "input_cost_per_token": 2e-07,
        "output_cost_per_token": 5e-07,
        "input_cost_per_token_above_128k_tokens": 4e-07,
    },
    "deepseek/chat": {
        "litellm_provider": "deepseek",
        "mode": "chat",
        "input_cost_per_token": 2.8e-07,
        "output_cost_per_token": 4.2e-07,
        "input_cost_per_token_cache_hit": 2.8e-08,
    },
    "embed-1": {"litellm_provider": "mistral", "mode": "embedding", "input_cost_per_token": 1e-07},
    "gpt-3.5-turbo-instruct": {
        "litellm_provider": "text-completion-openai",
        "mode": "completion",
        "input_cost_per_token": 1.5e-06,
        "output_cost_per_token": 2e-06,
    },
    "dall-e-3": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "input_cost_per_token": 0,
    },
    "bedrock-model": {
        "litellm_provider": "bedrock",
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 1e-06,
    },
    "openai/container": {"litellm_provider": "openai", "mode": "chat"},
    "chat-no-output": {"litellm_provider": "groq", "mode": "chat", "input_cost_per_token": 1e-06},
}


def run(update_prices, tmp_path, source=None, date="2026-11-20"):
    if source is None:
        source = tmp_path / "model_prices.json"
        source.write_text(json.dumps(LITELLM))
    out = tmp_path / "prices.json"
    assert update_prices.main([str(source), "--date", date, "--out", str(out)]) == 0
    return out


def test_generator_keeps_priced_text_models_of_the_gateway_providers(update_prices, tmp_path):
    models = json.loads(run(update_prices, tmp_path).read_text())["models"]
    assert sorted(models) == [
        "claude-x",
        "deepseek/chat",
        "embed-1",
        "gemini/pro",
        "gpt-3.5-turbo-instruct",
        "gpt-4o-mini",
        "xai/grok",
    ]


def test_generator_converts_per_token_floats_to_exact_per_million_strings(update_prices, tmp_path):
    models = json.loads(run(update_prices, tmp_path).read_text())["models"]
    assert models["gpt-4o-mini"] == {
        "provider": "openai",
        "input": "0.15",
        "output": "0.6",
        "cached_input": "0.075",
        "batch": {"input": "0.075"},
        "priority": {"output": "1"},
    }
    assert models["claude-x"] == {
        "provider": "anthropic",
        "input": "3",
        "output": "15",
        "cache_write_5m": "3.75",
        "cache_write_1h": "6",
    }
    assert models["gemini/pro"] == {
        "provider": "gemini",
        "input": "1.25",
        "output": "10",
        "reasoning": "10",
        "tiers": [{"threshold": 200000, "input": "2.5"}],
        "priority": {"tiers": [{"threshold": 200000, "input": "4.5"}]},
    }
    assert models["xai/grok"]["tiers"] == [{"threshold": 127999, "input": "0.4"}]
    assert models["deepseek/chat"]["cached_input"] == "0.028"
    assert models["embed-1"] == {"provider": "mistral", "input": "0.1", "output": "0"}
    assert models["gpt-3.5-turbo-instruct"]["provider"] == "openai"


def test_generator_output_is_deterministic_with_metadata(update_prices, tmp_path):
    first = run(update_prices, tmp_path).read_text()
    assert run(update_prices, tmp_path).read_text() == first
    table = json.loads(first)
    assert table["generated_at"] == "2026-11-20"
    assert table["license"] == "MIT (LiteLLM)"
    assert table["unit"] == "USD per 1M tokens"
    assert table["source"] == "LiteLLM price table: model_prices.json"
    assert list(table) == sorted(table)


def test_generator_reads_the_table_out_of_a_wheel(update_prices, tmp_path):
    wheel = tmp_path / "litellm-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(update_prices.MEMBER, json.dumps(LITELLM))
    table = json.loads(run(update_prices, tmp_path, source=wheel).read_text())
    assert table["source"].startswith("litellm 9.9.9 wheel (litellm-9.9.9-py3-none-any.whl)")
    assert "gpt-4o-mini" in table["models"]


def test_generator_refuses_negative_prices(update_prices, tmp_path):
    source = tmp_path / "bad.json"
    bad = {"m": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": -1e-06}}
    source.write_text(json.dumps({"m": bad["m"] | {"output_cost_per_token": 1e-06}}))
    with pytest.raises(ValueError):
        run(update_prices, tmp_path, source=source)
    assert not (tmp_path / "prices.json").exists()


MEDIA_SOURCE = {
    "gpt-image-x": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "input_cost_per_token": 5e-06,
        "input_cost_per_image_token": 1e-05,
        "output_cost_per_image_token": 4e-05,
    },
    "high/1024-x-1024/gpt-image-x": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "input_cost_per_image": 0.167,
        "output_cost_per_pixel": 0.0,
    },
    "whisper-x": {
        "litellm_provider": "openai",
        "mode": "audio_transcription",
        "input_cost_per_second": 0.0001,
    },
    "tts-x": {
        "litellm_provider": "openai",
        "mode": "audio_speech",
        "input_cost_per_character": 1.5e-05,
    },
    "zero-image": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "input_cost_per_pixel": 0,
    },
    "claude-y-latest": {"alias_of": "claude-x"},
    "realtime-x": {"litellm_provider": "openai", "mode": "realtime", "input_cost_per_token": 1e-06},
}


def test_generator_keeps_media_prices_and_aliases(update_prices, tmp_path):
    source = tmp_path / "media.json"
    source.write_text(json.dumps({**LITELLM, **MEDIA_SOURCE}))
    table = json.loads(run(update_prices, tmp_path, source=source).read_text())
    assert table["media"] == {
        "gpt-image-x": {
            "provider": "openai",
            "text_input": "5",
            "image_input": "10",
            "image_output": "40",
        },
        "high/1024-x-1024/gpt-image-x": {"provider": "openai", "per_image": "0.167"},
        "whisper-x": {"provider": "openai", "input_per_second": "0.0001"},
        "tts-x": {"provider": "openai", "per_mchar": "15"},
    }
    assert table["models"]["claude-y-latest"] == {
        **table["models"]["claude-x"],
        "alias_of": "claude-x",
    }
    assert "realtime-x" not in table["models"]


def test_generator_adds_models_an_older_source_still_lists_as_retired(update_prices, tmp_path):
    old = tmp_path / "old.json"
    retired = {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-06,
               "output_cost_per_token": 5e-06}  # fmt: skip
    gone = {"litellm_provider": "openrouter", "mode": "chat", "input_cost_per_token": 1e-06,
            "output_cost_per_token": 1e-06}  # fmt: skip
    old.write_text(json.dumps({"claude-old": retired, "claude-x": retired, "openrouter/m": gone}))
    new = tmp_path / "model_prices.json"
    new.write_text(json.dumps(LITELLM))
    out = tmp_path / "prices.json"
    args = [str(new), "--date", "2026-11-20", "--out", str(out), "--retired", str(old)]
    assert update_prices.main(args) == 0
    table = json.loads(out.read_text())
    assert table["models"]["claude-old"]["input"] == "1"
    assert table["models"]["claude-old"]["retired"] == "LiteLLM price table: old.json"
    assert table["models"]["claude-x"]["input"] == "3"  # the newer source wins
    assert "openrouter/m" not in table["models"]  # a provider the new source no longer lists
    assert table["retired_source"] == "LiteLLM price table: old.json"
