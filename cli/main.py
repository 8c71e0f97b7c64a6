"""The ``tollkeeper`` command: a click group with one sub-group or command per noun."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from cli.context import App, UserError, translate
from cli.lazy import LazyCommands, Spec

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class TollkeeperGroup(click.Group):
    """The root group: turns every expected error into one ``Error:`` line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            _reraise(e)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - translated or re-raised unchanged
            _reraise(e)


def _reraise(error: Exception) -> NoReturn:
    """Raise the one-line form of ``error``, or ``error`` itself when it is a bug."""
    friendly = translate(error)
    if friendly is None:
        raise error
    raise friendly from error


@click.group(name="tollkeeper", cls=TollkeeperGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="tollkeeper")
@click.option(
    "--home",
    metavar="PATH",
    help="Data directory (default: $TOLLKEEPER_HOME, else ~/.tollkeeper).",
)
@click.option(
    "--db",
    metavar="URL",
    help="Database URL (default: $TOLLKEEPER_DB, else SQLite in the home directory).",
)
@click.option(
    "--actor",
    metavar="NAME",
    envvar="TOLLKEEPER_ACTOR",
    help="Name recorded in the audit log (default: $TOLLKEEPER_ACTOR, else your login name).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None, db: str | None, actor: str | None) -> None:
    """Tollkeeper: virtual keys, real provider keys, usage and cost for an LLM gateway.

    The gateway itself is a mitmproxy addon (see 'tollkeeper serve'); this command manages
    the database it reads. Settings come from TOLLKEEPER_HOME, TOLLKEEPER_DB and
    TOLLKEEPER_MASTER_KEY, or the options below.
    """
    if actor is not None and not actor.strip():
        raise UserError("--actor must not be empty")
    app = App(home=home, db=db, actor_option=actor.strip() if actor else None)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _providers() -> click.Command:
    from cli import providers, providers_health

    providers.providers.add_command(providers_health.enable)
    providers.providers.add_command(providers_health.test_)
    return providers.providers


# Every command, imported only when it runs (cli/lazy.py): add one line "name": "module:attr".
COMMANDS: dict[str, Spec] = {
    "keys": "cli.keys:keys",
    "providers": _providers,
    "usage": "cli.usage:usage",
    "audit": "cli.audit:audit",
    "prices": "cli.prices:prices",
    "serve": "cli.serve:serve",
    "client-env": "cli.client_env:client_env",
    "report": "cli.report:report",
}
cli.commands = LazyCommands(COMMANDS)


def main() -> None:
    """Console entry point. Unexpected failures print one line unless TOLLKEEPER_DEBUG is set."""
    if os.environ.get("TOLLKEEPER_DEBUG"):
        cli(prog_name="tollkeeper")
        return
    try:
        cli(prog_name="tollkeeper")
    except Exception as e:  # noqa: BLE001 - last resort: a bug is reported, not hidden
        click.echo(
            f"Error: internal error ({type(e).__name__}); "
            "rerun with TOLLKEEPER_DEBUG=1 to see the traceback",
            err=True,
        )
        sys.exit(1)
