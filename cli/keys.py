"""``tollkeeper keys``: virtual keys for projects (create, list, show, revoke, rotate, update).

The store modules (SQLAlchemy) are imported inside the commands that use them, so that
``keys list`` can answer from ``addon.store.quick`` without importing SQLAlchemy at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from addon.alerts import parse_thresholds, period_of
from addon.moments import utcnow
from addon.store import quick
from addon.store.key_policy import BUDGET_PERIODS, KeyPolicy, KeyRow
from cli import keys_view
from cli.context import App, UserError, pass_app
from cli.output import note, print_json
from cli.parse import DURATION, LIST, USD

if TYPE_CHECKING:
    from sqlmodel import Session


class LimitType(click.ParamType[int | str]):
    """A positive integer, or (when ``clearable``) ``none`` to remove the limit."""

    name = "integer"

    def __init__(self, *, clearable: bool) -> None:
        self.clearable = clearable

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # already converted (a default)
        if self.clearable and value.strip().lower() == "none":
            return "none"
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            extra = " or 'none'" if self.clearable else ""
            self.fail(f"{value!r} is not a positive integer{extra}", param, ctx)
        return number


class ThresholdsType(click.ParamType[tuple[int, ...]]):
    """Budget alert thresholds: ``50,80,100`` (percent); ``none`` removes them."""

    name = "percent,…"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if not isinstance(value, str):
            return value  # type: ignore[no-any-return]  # already converted
        if value.strip().lower() in ("none", ""):
            return ()
        try:
            return parse_thresholds(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def policy_options(*, for_update: bool) -> Callable[[Any], Any]:
    """The policy options shared by ``keys create`` and ``keys update``."""
    limit = LimitType(clearable=for_update)
    clear = " ('none' removes it)" if for_update else ""
    empty = " ('' allows all)" if for_update else ""
    options = [
        click.option("--expires-in", type=DURATION, help="Lifetime from now: 30d, 12h, 90m, 45s."),
        click.option(
            "--budget", type=USD, metavar="USD", help="Spending limit in USD, e.g. 25.00."
        ),
        click.option(
            "--budget-period",
            type=click.Choice(BUDGET_PERIODS),
            default=None if for_update else "total",
            show_default=not for_update,
            help="What the budget covers: the key's whole life, a UTC day or a UTC month.",
        ),
        click.option(
            "--alert-at",
            type=ThresholdsType(),
            metavar="PERCENT,…",
            help="Budget alerts: POST to the gateway's alert webhook when the period's spend"
            f" reaches these percentages of the budget, e.g. 50,80,100{clear}.",
        ),
        click.option("--rpm", type=limit, help=f"Requests per minute{clear}."),
        click.option("--tpm", type=limit, help=f"Tokens per minute{clear}."),
        click.option("--max-parallel", type=limit, help=f"Concurrent requests{clear}."),
        click.option(
            "--models",
            type=LIST,
            metavar="PATTERN,…",
            help=f"Allowed models, glob patterns like 'gpt-4o*,claude-*'{empty}.",
        ),
        click.option(
            "--providers",
            type=LIST,
            metavar="NAME,…",
            help=f"Allowed providers, e.g. 'openai,anthropic'{empty}.",
        ),
        click.option(
            "--allow-unmetered/--no-allow-unmetered",
            default=None,
            help="Let a key with a budget or TPM limit reach endpoints the gateway does not"
            " meter (recorded as unpriced); refused with 403 otherwise.",
        ),
        click.option("--metadata", metavar="JSON", help="Free-form JSON object kept with the key."),
    ]

    def decorate(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _policy_changes(options: dict[str, Any]) -> dict[str, Any]:
    """KeyPolicy fields named by the options that were given (None = not given)."""
    changes: dict[str, Any] = {}
    if options.get("expires_in") is not None:
        changes["expires_at"] = utcnow() + options["expires_in"]
    if options.get("budget") is not None:
        changes["budget_picousd"] = options["budget"]
    if options.get("budget_period") is not None:
        changes["budget_period"] = options["budget_period"]
    if options.get("alert_at") is not None:
        changes["alert_at"] = options["alert_at"]
    for name in ("rpm", "tpm", "max_parallel"):
        if options.get(name) is not None:
            changes[name] = None if options[name] == "none" else options[name]
    if options.get("models") is not None:
        changes["allowed_models"] = options["models"]
    if options.get("providers") is not None:
        changes["allowed_providers"] = options["providers"]  # checked against the store
    if options.get("allow_unmetered") is not None:
        changes["allow_unmetered"] = options["allow_unmetered"]
    if options.get("metadata") is not None:
        changes["metadata"] = _parse_metadata(options["metadata"])
    return changes


def _check_providers(session: Session, changes: dict[str, Any]) -> None:
    """Allowed providers must be built in or defined with 'providers define'."""
    from cli.providers import check_provider, known_providers  # the registry: only here

    known = known_providers(session)
    for name in changes.get("allowed_providers", ()):
        check_provider(name, known)


def _parse_metadata(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"--metadata is not valid JSON: {e.msg} at position {e.pos}") from e
    if not isinstance(value, dict):
        raise UserError('--metadata must be a JSON object, e.g. \'{"team": "search"}\'')
    return value


@click.group()
def keys() -> None:
    """Virtual keys: what projects use instead of real provider keys."""


@keys.command()
@click.option("--project", required=True, help="Project the key belongs to (used in reports).")
@policy_options(for_update=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (includes the key).")
@pass_app
def create(app: App, /, project: str, as_json: bool, **options: Any) -> None:
    """Create a virtual key and print it, once.

    The key is printed alone on stdout (or inside the JSON object with --json); only its
    hash is stored, so it cannot be shown again. Lost keys are rotated, not recovered.
    """
    from addon.store import keys_repo

    changes = _policy_changes(options)
    policy = KeyPolicy(**changes)
    with app.session() as session:
        _check_providers(session, changes)
        row, secret = keys_repo.create_key(
            session=session, project=project.strip(), policy=policy, actor=app.actor
        )
        data = keys_view.key_with_secret_json(row, secret)
    if as_json:
        print_json(data)
    else:
        click.echo(secret)
    note(f"Created key {row.id} for project {row.project!r}.")
    note("Save the key now: it is not shown again.")


@keys.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked and expired keys.")
@click.option("--project", help="Only keys of this project.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_app
def list_(app: App, show_all: bool, project: str | None, as_json: bool) -> None:
    """List virtual keys (active ones unless --all). Never shows a secret."""
    rows: Sequence[KeyRow] | None = quick.list_keys(app.settings.db_url, include_inactive=show_all)
    if rows is None:  # not sure the quick read is right: the full path (it migrates)
        from addon.store import keys_repo

        with app.session() as session:
            rows = keys_repo.list_keys(session=session, include_inactive=show_all)
    if project is not None:
        rows = [r for r in rows if r.project == project]
    if as_json:
        print_json([keys_view.key_json(r) for r in rows])
    elif rows:
        keys_view.print_key_table(rows)
    else:
        note("No keys." if show_all else "No active keys (--all shows revoked and expired ones).")


@keys.command()
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_app
def show(app: App, key_id: str, as_json: bool) -> None:
    """Show one key's project, status, policy and current spend (not its secret).

    Spend is what the current budget period has settled plus what is in flight; the
    period resets at 00:00 UTC (daily) or on the 1st (monthly). Budget alerts fired in
    the current period are listed with how their webhook went."""
    from addon.store import alerts_repo, keys_repo, limits_repo

    now = utcnow()
    with app.session() as session:
        row = keys_repo.get_key(session=session, key_id=key_id)
        live = limits_repo.state(session, keys_view.limits_of(row), now)
        period = period_of(row.budget_period, now, row.created_at)
        fired = alerts_repo.fired(session, row.id, period.start_day)
    if as_json:
        print_json({**keys_view.key_json(row), **keys_view.live_json(row, live, now, fired)})
    else:
        keys_view.print_key_details(row, live, now, fired)


@keys.command()
@click.argument("key_id")
@click.option("--reason", help="Why, for the audit log.")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked key as JSON.")
@pass_app
def revoke(app: App, key_id: str, reason: str | None, as_json: bool) -> None:
    """Revoke a key for good; running gateways refuse it within about a second."""
    from addon.store import keys_repo

    with app.session() as session:
        row = keys_repo.revoke_key(session=session, key_id=key_id, actor=app.actor, reason=reason)
    if as_json:
        print_json(keys_view.key_json(row))
    note(f"Revoked key {row.id} (project {row.project!r}).")


@keys.command()
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (includes the key).")
@pass_app
def rotate(app: App, key_id: str, as_json: bool) -> None:
    """Give a key a new secret; same id, project and policy. The old secret stops working."""
    from addon.store import keys_repo

    with app.session() as session:
        row, secret = keys_repo.rotate_key(session=session, key_id=key_id, actor=app.actor)
        data = keys_view.key_with_secret_json(row, secret)
    if as_json:
        print_json(data)
    else:
        click.echo(secret)
    note(f"Rotated key {row.id}. Save the new key now: it is not shown again.")


@keys.command()
@click.argument("key_id")
@policy_options(for_update=True)
@click.option("--no-expiry", is_flag=True, help="Remove the expiry date.")
@click.option("--no-budget", is_flag=True, help="Remove the budget.")
@click.option("--json", "as_json", is_flag=True, help="Print the updated key as JSON.")
@pass_app
def update(
    app: App, /, key_id: str, no_expiry: bool, no_budget: bool, as_json: bool, **options: Any
) -> None:
    """Change a key's policy; options not given stay as they are."""
    from addon.store import keys_repo

    changes = _policy_changes(options)
    if no_expiry:
        if "expires_at" in changes:
            raise UserError("--no-expiry and --expires-in contradict each other")
        changes["expires_at"] = None
    if no_budget:
        if "budget_picousd" in changes:
            raise UserError("--no-budget and --budget contradict each other")
        changes["budget_picousd"] = None
        changes.setdefault("alert_at", ())  # percentages of a budget that is gone
    if not changes:
        raise UserError("nothing to change; see 'tollkeeper keys update --help'")
    with app.session() as session:
        _check_providers(session, changes)
        if keys_repo.get_key(session=session, key_id=key_id).revoked_at is not None:
            raise UserError(f"key {key_id} is revoked; create a new one")
        row = keys_repo.update_key(session=session, key_id=key_id, changes=changes, actor=app.actor)
    if as_json:
        print_json(keys_view.key_json(row))
    note(f"Updated key {row.id}: {', '.join(sorted(changes))}.")
