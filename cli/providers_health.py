"""``tollkeeper providers enable`` and ``providers test``: bring a real key back, check one.

How the gateway judges keys (only answers that say the credential is bad count; a cooling key
is retried on its own after a growing backoff) is described in ``addon/pool.py``.
"""

from __future__ import annotations

from typing import Any

import click

from addon.providers.registry import Registry
from addon.store import custom_providers_repo, realkeys_repo
from addon.store.models import RealKey
from addon.vault import VaultError
from cli.context import App, UserError, pass_app
from cli.key_test import KeyTest, key_test_url, run_key_test
from cli.output import note, print_json
from cli.providers import check_provider, health_word, key_hint, known_providers


@click.command()
@click.argument("name")
@click.option("--label", required=True, help="Which key of the provider's pool.")
@pass_app
def enable(app: App, name: str, label: str) -> None:
    """Bring real key LABEL of provider NAME back now, whether cooling down or disabled.

    Running gateways use it again within about a second. Fix the key upstream first (or check
    it with 'tollkeeper providers test'): a key the provider still rejects is taken out again
    by its next request.
    """
    with app.session() as session:
        check_provider(name, known_providers(session))
        row = _find(realkeys_repo.list_real_keys(session=session, provider=name), label)
        was = health_word(row)
        realkeys_repo.enable_real_key(session=session, provider=name, label=label, actor=app.actor)
    note(f"Enabled {name} key {label!r} (was {was}).")


@click.command(name="test")
@click.argument("name")
@click.option("--label", help="Test only this key (default: every key of the provider).")
@click.option("--timeout", "timeout_s", default=10.0, show_default=True, help="Seconds to wait.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def test_(app: App, name: str, label: str | None, timeout_s: float, as_json: bool) -> None:
    """Make one cheap authenticated call (list models) with each key of provider NAME.

    Prints one line per key: whether the provider accepted the key, the status and error
    code it answered, and how long it took. The call goes straight to the key's upstream,
    not through a gateway, and changes nothing stored. Exit status 1 when a key does not
    authenticate (rejected, unreachable, a server error).
    """
    with app.session() as session:
        check_provider(name, known_providers(session))
        customs = custom_providers_repo.list_custom(session=session)
        rows = realkeys_repo.list_real_keys(session=session, provider=name)
    if label is not None:
        rows = [_find(rows, label)]
    if not rows:
        raise UserError(f"no {name} keys; add one with 'tollkeeper providers add {name}'")
    provider = Registry(custom_providers_repo.as_providers(customs)).providers[name]
    vault = app.vault()
    results = []
    for row in rows:
        try:
            secret = vault.resolve(ciphertext=row.ciphertext, env_ref=row.env_ref)
            url = key_test_url(provider, row.base_url)
        except (VaultError, ValueError) as e:
            raise UserError(f"{name}/{row.label}: {e}") from e
        results.append((row, run_key_test(provider, url, secret, timeout_s=timeout_s)))
    if as_json:
        print_json([_result_json(row, r) for row, r in results])
    else:
        for row, r in results:
            click.echo(_result_line(row, r))
    if not all(r.key_works for _, r in results):
        raise click.exceptions.Exit(1)


def _find(rows: list[RealKey], label: str) -> RealKey:
    for row in rows:
        if row.label == label:
            return row
    raise UserError(f"no key labelled {label!r} for this provider")


_WORDS = {
    "ok": "ok",
    "refused": "key accepted, call refused",
    "rate_limited": "key accepted, rate-limited",
    "key_rejected": "KEY REJECTED",
    "unknown": "provider error",
    "unreachable": "UNREACHABLE",
}


def _result_line(row: RealKey, r: KeyTest) -> str:
    answer = f"{r.status}" if r.status is not None else "no answer"
    if r.reason:
        answer = r.reason if r.status is not None else f"{answer}: {r.reason}"
    return (
        f"{row.provider}/{row.label} ({key_hint(row)}): {_WORDS[r.verdict]} — {answer}"
        f" — GET {r.url} in {r.latency_ms} ms"
    )


def _result_json(row: RealKey, r: KeyTest) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "label": row.label,
        "key_hint": key_hint(row),
        "url": r.url,
        "status": r.status,
        "verdict": r.verdict,
        "reason": r.reason,
        "key_works": r.key_works,
        "latency_ms": r.latency_ms,
    }
