"""``tollkeeper providers``: the real provider keys the gateway swaps in (a pool per provider).

Secrets are read from an environment variable or stdin, never from the command line (where
they would land in shell history and ``ps``), stored encrypted, and shown only as ``…`` plus
their last four characters.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any
from urllib.parse import urlsplit

import click
from sqlmodel import Session

from addon import binding, keys
from addon.providers.registry import CUSTOM_FORMATS, PROVIDERS
from addon.store import custom_providers_repo, realkeys_repo
from addon.store.models import RealKey
from addon.vault import Vault, VaultError, load_master_key, unreadable
from cli.base_url_hint import warn_if_no_path
from cli.context import App, UserError, pass_app
from cli.output import iso, note, print_json, print_table, short_time

PROVIDER_NAMES = frozenset(PROVIDERS)  # built in; operators may define more
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def known_providers(session: Session) -> frozenset[str]:
    customs = custom_providers_repo.list_custom(session=session)
    return PROVIDER_NAMES | {c.name for c in customs}


def check_provider(name: str, known: frozenset[str] = PROVIDER_NAMES) -> str:
    if name not in known:
        raise UserError(f"unknown provider {name!r}; known: {', '.join(sorted(known))}")
    return name


def parse_model_map(text: str) -> dict[str, str]:
    """``deployment=model,other=model`` (Azure deployment names to the models they run)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        deployment, sep, model = part.partition("=")
        if not sep or not deployment.strip() or not model.strip():
            raise UserError(f"--model-map entry {part!r} is not DEPLOYMENT=MODEL")
        out[deployment.strip()] = model.strip()
    return out


def check_base_url(url: str) -> str:
    """An http(s) URL with a host, no credentials and no fragment."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as e:
        raise UserError(f"--base-url {url!r} is not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UserError(f"--base-url {url!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise UserError("--base-url must not contain credentials; the key goes in the key store")
    if parts.fragment or parts.query:
        raise UserError(f"--base-url {url!r} must not have a query or fragment")
    return url


def key_hint(row: RealKey) -> str:
    """What may be shown of a key: ``…abcd``, or the name of the variable it refers to."""
    if row.env_ref:
        return f"${row.env_ref}"
    return f"…{row.last4}"


def real_key_json(row: RealKey) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "label": row.label,
        "base_url": row.base_url,
        "stored_as": "env_ref" if row.env_ref else "encrypted",
        "env_ref": row.env_ref,
        "key_hint": key_hint(row),
        "status": row.status,
        "cooldown_until": iso(row.cooldown_until),
        "health": {
            "status": health_word(row),
            "next_try_at": iso(row.cooldown_until),
            "failures": row.consecutive_auth_failures,
            "last_error": row.last_error,
            "updated_at": iso(row.updated_at),
        },
        "consecutive_auth_failures": row.consecutive_auth_failures,
        "model_map": json.loads(row.model_map_json or "{}"),
        "last_error": row.last_error,
        "created_at": iso(row.created_at),
    }


def health_word(row: RealKey) -> str:
    """healthy | rate_limited | key_rejected (cooling; retried on its own) | disabled."""
    if row.status == "cooling":
        return "key_rejected" if row.consecutive_auth_failures else "rate_limited"
    return row.status


_TABLE_HEALTH = {"rate_limited": "cooling (rate limited)", "key_rejected": "cooling (key rejected)"}


def _read_secret(env_var: str | None, from_stdin: bool) -> str:
    if env_var is not None:
        value = os.environ.get(env_var, "").strip()
        if not value:
            raise UserError(f"environment variable {env_var} is not set or empty")
        return value
    if sys.stdin.isatty():
        value = click.prompt("API key", hide_input=True, err=True)
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UserError("no API key on stdin")
    return value


def _check_master_key(vault: Vault, rows: list[RealKey]) -> None:
    """Refuse to mix master keys: the stored keys must decrypt with this one."""
    stored = next((r for r in rows if r.ciphertext), None)
    if stored is None or stored.ciphertext is None:
        return
    try:
        vault.decrypt(stored.ciphertext)
    except VaultError as e:
        raise UserError(
            "the master key does not decrypt the keys already stored "
            "(check TOLLKEEPER_MASTER_KEY or the master.key file)"
        ) from e


def _refuse_virtual_key(secret: str) -> None:
    try:
        keys.parse_key(secret)
    except keys.MalformedKey:
        return
    raise UserError(
        "that is a tollkeeper virtual key (tk-…), not a provider's API key; "
        "give the key the provider issued"
    )


def unreadable_ids(app: App, rows: list[RealKey]) -> set[str]:
    """Ids of the stored keys the current master key cannot decrypt (none is created)."""
    try:
        vault = Vault(load_master_key(app.settings.master_key_path, create=False))
    except (VaultError, OSError):
        return {str(r.id) for r in rows if r.ciphertext}
    return set(unreadable(vault, ((str(r.id), r.ciphertext) for r in rows)))


@click.group()
def providers() -> None:
    """Real provider keys: the credentials the gateway uses upstream."""


@providers.command()
@click.argument("name")
@click.option("--api-key-env", metavar="VAR", help="Read the key from this environment variable.")
@click.option("--api-key-stdin", is_flag=True, help="Read the key from one line of stdin.")
@click.option("--label", default="default", show_default=True, help="Name of this key in the pool.")
@click.option("--base-url", metavar="URL", help="Send this provider's traffic to another endpoint.")
@click.option(
    "--store-env-reference",
    is_flag=True,
    help="Store only the variable name given by --api-key-env; the gateway reads it at use.",
)
@click.option(
    "--model-map",
    metavar="DEPLOYMENT=MODEL,…",
    help="Azure: the model each deployment runs, for pricing when a response names none.",
)
@pass_app
def add(
    app: App,
    name: str,
    api_key_env: str | None,
    api_key_stdin: bool,
    label: str,
    base_url: str | None,
    store_env_reference: bool,
    model_map: str | None,
) -> None:
    """Add a real key for provider NAME, stored encrypted with the master key.

    The master key comes from TOLLKEEPER_MASTER_KEY, else from <home>/master.key (created with
    mode 0600 on first use). Keep it: without it stored keys cannot be decrypted.
    """
    mapping = parse_model_map(model_map) if model_map else None
    if (api_key_env is None) == (not api_key_stdin):
        raise UserError("give exactly one of --api-key-env VAR or --api-key-stdin")
    if api_key_env is not None and not _ENV_NAME_RE.match(api_key_env):
        raise UserError(f"--api-key-env {api_key_env!r} is not an environment variable name")
    if store_env_reference and api_key_env is None:
        raise UserError("--store-env-reference needs --api-key-env")
    if not label.strip():
        raise UserError("--label must not be empty")
    if base_url is not None:
        check_base_url(base_url)
    if problem := binding.destination_problem(PROVIDERS.get(name), base_url):
        raise UserError(problem)
    secret: str | None = None
    if store_env_reference:
        if not os.environ.get(str(api_key_env), "").strip():
            note(f"Warning: {api_key_env} is not set here; the gateway must have it.")
    else:
        secret = _read_secret(api_key_env, api_key_stdin)
    _refuse_virtual_key(secret or os.environ.get(str(api_key_env), ""))
    with app.session() as session:
        check_provider(name, known_providers(session))
        warn_if_no_path(session, name, base_url)
        vault = app.vault()
        _check_master_key(vault, realkeys_repo.list_real_keys(session=session))
        row = realkeys_repo.add_real_key(
            session=session,
            vault=vault,
            provider=name,
            label=label.strip(),
            secret=secret,
            env_ref=api_key_env if store_env_reference else None,
            base_url=base_url,
            actor=app.actor,
            model_map=mapping,
        )
        hint = key_hint(row)
    stored = "as a reference to" if store_env_reference else "encrypted, key"
    note(f"Added {name} key {label.strip()!r} ({stored} {hint}).")


@providers.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List real keys with their health; keys show only as … and their last 4 characters.

    HEALTH: healthy; cooling (rate limited) after a 429, usable again at NEXT TRY; cooling
    (key rejected) when the provider said the key itself is bad, tried again on its own at
    NEXT TRY with a backoff that doubles per failure; disabled after repeated rejections over
    time (bring it back with 'providers enable'). LAST ERROR is the last upstream answer that
    changed the key's health. In --json, "health.status" is healthy, rate_limited,
    key_rejected or disabled.
    """
    with app.session() as session:
        rows = realkeys_repo.list_real_keys(session=session)
    bad = unreadable_ids(app, rows)
    if as_json:
        print_json([{**real_key_json(r), "readable": str(r.id) not in bad} for r in rows])
        return
    if not rows:
        note("No provider keys. Add one with 'tollkeeper providers add'.")
        return
    if bad:
        note(
            "Keys marked unreadable do not decrypt with this master key;"
            " the gateway will not start with them."
        )
    print_table(
        ["PROVIDER", "LABEL", "KEY", "BASE URL", "HEALTH", "NEXT TRY", "FAILURES", "LAST ERROR"],
        [
            [
                r.provider,
                r.label,
                key_hint(r),
                r.base_url or "-",
                "unreadable" if str(r.id) in bad else _TABLE_HEALTH.get(health_word(r), r.status),
                short_time(r.cooldown_until, seconds=True),
                r.consecutive_auth_failures,
                r.last_error or "-",
            ]
            for r in rows
        ],
    )


@providers.command()
@click.argument("name")
@click.option("--label", required=True, help="Which key of the provider's pool.")
@pass_app
def remove(app: App, name: str, label: str) -> None:
    """Remove a real key from provider NAME's pool."""
    with app.session() as session:
        realkeys_repo.remove_real_key(session=session, provider=name, label=label, actor=app.actor)
    note(f"Removed {name} key {label!r}.")


@providers.command()
@click.argument("name")
@click.option("--base-url", required=True, metavar="URL", help="Where the provider's API lives.")
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="HOST",
    help="Another host clients use for it (the base URL's host is always one). Repeatable.",
)
@click.option(
    "--auth",
    type=click.Choice(["bearer", "x-api-key", "api-key"]),
    default="bearer",
    show_default=True,
    help="Header that carries the key.",
)
@click.option(
    "--format",
    "wire_format",
    type=click.Choice(list(CUSTOM_FORMATS)),
    default=next(iter(CUSTOM_FORMATS)),
    show_default=True,
    help="Wire format (requests, usage, errors) it speaks.",
)
@pass_app
def define(
    app: App, name: str, base_url: str, hosts: tuple[str, ...], auth: str, wire_format: str
) -> None:
    """Define provider NAME: an OpenAI- or Anthropic-compatible API, e.g. a self-hosted vLLM.

    Then add its real key with 'tollkeeper providers add NAME' and point clients at it
    (through the proxy, or a reverse listener for the base URL). Running gateways pick it up
    within about a second.
    """
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", name):
        raise UserError("provider names are lower-case letters, digits, '-' and '_'")
    check_base_url(base_url)
    with app.session() as session:
        try:
            custom_providers_repo.define_provider(
                session=session,
                name=name,
                base_url=base_url,
                hosts=tuple(h.strip().lower() for h in hosts if h.strip()),
                auth=auth,
                wire_format=wire_format,
                actor=app.actor,
            )
        except ValueError as e:
            raise UserError(str(e)) from e
    note(f"Defined provider {name} at {base_url}.")


@providers.command()
@click.argument("name")
@pass_app
def undefine(app: App, name: str) -> None:
    """Remove a provider defined with 'providers define' (its real keys stay until removed)."""
    with app.session() as session:
        custom_providers_repo.remove_custom(session=session, name=name, actor=app.actor)
    note(f"Removed the definition of provider {name}.")


@providers.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def defined(app: App, as_json: bool) -> None:
    """List the providers defined with 'providers define'."""
    with app.session() as session:
        rows = custom_providers_repo.list_custom(session=session)
    data = [
        {
            "name": r.name,
            "base_url": r.base_url,
            "hosts": [h for h in r.hosts.split(",") if h],
            "auth": r.auth,
            "format": r.wire_format,
            "created_at": iso(r.created_at),
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    print_table(
        ["NAME", "BASE URL", "HOSTS", "AUTH", "FORMAT"],
        [[r.name, r.base_url, r.hosts or "-", r.auth, r.wire_format] for r in rows],
    )
