"""``providers define|undefine|defined`` and Azure's ``--model-map``."""

from __future__ import annotations

import json

from sqlmodel import Session

from addon.store.audit_repo import list_events
from addon.store.realkeys_repo import list_real_keys


def test_define_list_use_and_undefine_a_custom_provider(ok, tk, store, one_line_error):
    ok("providers", "define", "vllm", "--base-url", "http://10.0.0.5:8000/v1", "--host", "gpu1")
    (defined,) = json.loads(ok("providers", "defined", "--json").stdout)
    assert defined["name"] == "vllm" and defined["hosts"] == ["gpu1"]
    assert (defined["auth"], defined["format"]) == ("bearer", "openai")
    # a defined provider takes real keys and may be named in a key's allow-list
    ok("providers", "add", "vllm", "--api-key-stdin", "--label", "gpu", input="sk-local-1234\n")
    key = json.loads(ok("keys", "create", "--project", "p", "--providers", "vllm", "--json").stdout)
    assert key["providers"] == ["vllm"]
    ok("providers", "undefine", "vllm")
    assert json.loads(ok("providers", "defined", "--json").stdout) == []
    with Session(store) as s:
        actions = [e.action for e in list_events(session=s)]
    assert "provider.defined" in actions and "provider.undefined" in actions
    one_line_error(tk("providers", "add", "vllm", "--api-key-stdin", input="x\n"), "vllm")


def test_define_refuses_builtin_names_bad_urls_and_duplicates(ok, tk, one_line_error):
    one_line_error(tk("providers", "define", "openai", "--base-url", "http://x/v1"), "built-in")
    one_line_error(tk("providers", "define", "ok", "--base-url", "ftp://x"), "base-url")
    one_line_error(tk("providers", "define", "Bad Name", "--base-url", "http://x"), "names")
    ok("providers", "define", "ollama", "--base-url", "http://127.0.0.1:11434/v1")
    one_line_error(
        tk("providers", "define", "ollama", "--base-url", "http://127.0.0.1:1/v1"), "already"
    )
    one_line_error(tk("providers", "undefine", "nope"), "nope")


def test_define_refuses_built_in_hosts_and_wildcards_wider_than_one_domain(ok, tk, one_line_error):
    def define(*hosts: str, base_url: str = "http://10.0.0.5:8000/v1"):
        args = [a for h in hosts for a in ("--host", h)]
        return tk("providers", "define", "grab", "--base-url", base_url, *args)

    one_line_error(define("api.openai.com"), "built-in provider openai")
    one_line_error(define(base_url="https://api.anthropic.com/v1"), "built-in provider anthropic")
    one_line_error(define("*.com"), "wider than one registrable domain")
    one_line_error(define("*.co.uk"), "wider than one registrable domain")
    one_line_error(define("*.openai.com"), "overlaps built-in provider hosts")
    one_line_error(define("*.azure.com"), "overlaps built-in provider hosts")
    one_line_error(define("*.x.openai.azure.com"), "overlaps built-in provider hosts")
    one_line_error(define("api*.example.com"), "not a host name")
    one_line_error(define("*"), "not a host name")
    ok(
        "providers",
        "define",
        "mine",
        "--base-url",
        "http://gpu.corp.example/v1",
        "--host",
        "*.corp.example",
    )


def test_a_stored_definition_never_takes_a_built_in_host_over():
    from addon.providers.registry import Registry, custom_provider

    rogue = custom_provider(
        name="rogue",
        base_url="http://10.0.0.5/v1",
        hosts=("api.openai.com",),
        auth="bearer",
        wire_format="openai",
    )
    assert Registry((rogue,)).by_host("api.openai.com").name == "openai"


def test_azure_keys_need_a_base_url_and_https_for_a_resource(tk, one_line_error):
    def add(*extra: str):
        return tk("providers", "add", "azure", "--api-key-stdin", *extra, input="azure-k-0001\n")

    one_line_error(add(), "need --base-url")
    one_line_error(add("--base-url", "http://res.openai.azure.com"), "must be https://")


def test_azure_model_map_is_stored_and_listed(ok, tk, store, one_line_error):
    ok(
        "providers",
        "add",
        "azure",
        "--api-key-stdin",
        "--base-url",
        "https://res.openai.azure.com",
        "--model-map",
        "prod-4o=gpt-4o, mini=gpt-4o-mini",
        input="azure-secret-key-0001\n",
    )
    (listed,) = json.loads(ok("providers", "list", "--json").stdout)
    assert listed["model_map"] == {"prod-4o": "gpt-4o", "mini": "gpt-4o-mini"}
    with Session(store) as s:
        (row,) = list_real_keys(session=s)
    assert json.loads(row.model_map_json) == {"mini": "gpt-4o-mini", "prod-4o": "gpt-4o"}
    one_line_error(
        tk(
            "providers",
            "add",
            "azure",
            "--api-key-stdin",
            "--label",
            "x",
            "--model-map",
            "oops",
            input="k\n",
        ),
        "DEPLOYMENT=MODEL",
    )
