"""Azure OpenAI's provider module: deployment paths and the deployment name."""

from __future__ import annotations

import pytest

from addon.providers.azure import PROVIDER


@pytest.mark.parametrize(
    ("path", "api", "model"),
    [
        (
            "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            "openai.chat",
            "prod-4o",
        ),
        ("/openai/deployments/emb/embeddings?api-version=2024-10-21", "openai.embeddings", "emb"),
        ("/openai/v1/chat/completions", "openai.chat", None),
        ("/openai/v1/responses", "openai.responses", None),
        # older openai SDKs join the base URL and the path with a repeated slash
        ("//openai/deployments/gpt-4o/chat/completions?api-version=1", "openai.chat", "gpt-4o"),
        ("/openai//deployments/gpt-4o//embeddings", "openai.embeddings", "gpt-4o"),
        ("//openai/v1/responses", "openai.responses", None),
    ],
)
def test_azure_paths(path: str, api: str, model: str | None) -> None:
    azure = PROVIDER
    assert azure.api_for("POST", path) == api
    assert azure.model_in_path is not None and azure.model_in_path(path) == model


def test_azure_has_no_fixed_upstream_and_speaks_openai() -> None:
    assert PROVIDER.keeps_destination
    assert PROVIDER.matches_host("myres.openai.azure.com")
    assert PROVIDER.auth.header == "api-key"
    assert PROVIDER.injects_include_usage("openai.chat")
    bad = b'{"error": {"code": "401", "message": "Access denied due to invalid subscription key"}}'
    assert PROVIDER.key_rejected(401, bad) == "401 invalid_subscription_key"
