"""``tollkeeper serve``: start the gateway, a thin launcher of mitmdump (or mitmweb).

It only assembles the command line and execs it; the proxy is mitmproxy itself with
``addon/gateway.py`` loaded. ``--dry-run`` prints the command instead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

import addon
from addon.admin import DEFAULT as ADMIN_DEFAULT
from addon.admin import parse_address
from addon.alert_sender import check_url
from addon.options import ALERT_WEBHOOK_ENV
from addon.providers.registry import PROVIDERS
from cli.context import App, UserError, pass_app, safe_url

# the providers with a reverse listener option of their own (--openai-port, ...), and the
# upstream each listener forwards to: the provider's own API host
REVERSE_UPSTREAMS = {
    name: f"https://{PROVIDERS[name].hosts[0]}" for name in ("openai", "anthropic", "gemini")
}
OPENAI_UPSTREAM, ANTHROPIC_UPSTREAM, GEMINI_UPSTREAM = REVERSE_UPSTREAMS.values()
# mitmweb's flow list: its default columns plus the comment tollkeeper writes on each flow
# (project · model · tokens · cost). A sequence option takes one --set per value.
WEB_COLUMNS = ("tls", "icon", "path", "method", "status", "size", "time", "comment")
PORT = click.IntRange(1, 65535)


def gateway_script() -> Path:
    """``addon/gateway.py`` of the installed package."""
    return Path(addon.__file__).resolve().parent / "gateway.py"


def mitmproxy_tool(name: str) -> str:
    """``mitmdump``/``mitmweb`` next to this Python (the same venv), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def build_command(
    *,
    tool: str,
    host: str,
    port: int,
    reverse: dict[str, int],
    web_port: int | None,
    extra: tuple[str, ...],
    admin: str | None = None,
) -> list[str]:
    """The mitmproxy command line: one regular listener plus the reverse listeners asked for
    (``reverse``: provider name to port)."""
    try:
        admin_address = parse_address(admin if admin is not None else ADMIN_DEFAULT)
    except ValueError as e:
        raise UserError(str(e).replace("tollkeeper_admin", "--admin")) from e
    admin_port = admin_address[1] if admin_address else None
    ports = [p for p in (port, *reverse.values(), web_port, admin_port) if p is not None]
    if len(ports) != len(set(ports)):
        raise UserError(f"ports must differ (got {', '.join(map(str, ports))})")
    command = [tool, "-s", str(gateway_script()), "--mode", f"regular@{host}:{port}"]
    for name, reverse_port in reverse.items():
        command += ["--mode", f"reverse:{REVERSE_UPSTREAMS[name]}@{host}:{reverse_port}"]
    if web_port is not None:  # the UI stays on mitmweb's default host, 127.0.0.1
        command += ["--set", f"web_port={web_port}"]
        for column in WEB_COLUMNS:
            command += ["--set", f"web_columns={column}"]
    if admin is not None:
        command += ["--set", f"tollkeeper_admin={admin}"]
    return command + list(extra)


def _reverse_ports(**ports: int | None) -> dict[str, int]:
    return {name: port for name, port in ports.items() if port is not None}


def _settings_env(app: App) -> dict[str, str]:
    """Global --home/--db, handed to the gateway through the environment it shares with us."""
    env = {}
    if app.home is not None:
        env["TOLLKEEPER_HOME"] = app.home
    if app.db is not None:
        env["TOLLKEEPER_DB"] = app.db
    return env


def _alert_env(url: str | None) -> dict[str, str]:
    if url is None:
        return {}
    try:
        return {ALERT_WEBHOOK_ENV: check_url(url)}
    except ValueError as e:
        raise UserError(f"--alert-webhook: {e}") from e


def _shown(name: str, value: str) -> str:
    """An environment value fit to print: no password, no webhook path (it may be a token)."""
    if name == "TOLLKEEPER_DB":
        return safe_url(value)
    if name == ALERT_WEBHOOK_ENV:
        parts = urlsplit(value)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    return value


@click.command(context_settings={"allow_interspersed_args": False})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=PORT, default=8080, show_default=True, help="Forward-proxy port.")
@click.option("--openai-port", type=PORT, help=f"Also a reverse listener for {OPENAI_UPSTREAM}.")
@click.option(
    "--anthropic-port", type=PORT, help=f"Also a reverse listener for {ANTHROPIC_UPSTREAM}."
)
@click.option("--gemini-port", type=PORT, help=f"Also a reverse listener for {GEMINI_UPSTREAM}.")
@click.option("--web", is_flag=True, help="Run mitmweb (flows in the browser) instead of mitmdump.")
@click.option("--web-port", type=PORT, default=8090, show_default=True, help="mitmweb's UI port.")
@click.option(
    "--admin",
    metavar="HOST:PORT|off",
    help=f"Admin listener: /healthz, /readyz, /metrics (default {ADMIN_DEFAULT}).",
)
@click.option(
    "--alert-webhook",
    metavar="URL",
    help="Where budget alerts are POSTed (passed as $TOLLKEEPER_ALERT_WEBHOOK, not on the"
    " command line: webhook URLs often hold a secret).",
)
@click.option("--dry-run", is_flag=True, help="Print the command instead of running it.")
@click.argument("mitmproxy_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def serve(
    app: App,
    host: str,
    port: int,
    openai_port: int | None,
    anthropic_port: int | None,
    gemini_port: int | None,
    web: bool,
    web_port: int,
    admin: str | None,
    alert_webhook: str | None,
    dry_run: bool,
    mitmproxy_args: tuple[str, ...],
) -> None:
    """Start the gateway: mitmdump (or mitmweb) with addon/gateway.py.

    Arguments after -- go to mitmproxy unchanged, e.g.
    'tollkeeper serve -- --set confdir=/etc/tollkeeper/mitmproxy'. With --web, mitmweb's flow
    list shows each flow's comment (project, model, tokens, cost); open the URL with ?token=
    that mitmweb logs at start, or fix the token with '-- --set web_password=…'.
    """
    tool_name = "mitmweb" if web else "mitmdump"
    command = build_command(
        tool=mitmproxy_tool(tool_name),
        host=host,
        port=port,
        reverse=_reverse_ports(openai=openai_port, anthropic=anthropic_port, gemini=gemini_port),
        web_port=web_port if web else None,
        extra=mitmproxy_args,
        admin=admin,
    )
    env = _settings_env(app) | _alert_env(alert_webhook)
    if dry_run:
        shown = {k: _shown(k, v) for k, v in env.items()}
        prefix = [f"{k}={v}" for k, v in shown.items()]
        click.echo(" ".join([*map(shlex.quote, prefix), shlex.join(command)]))
        return
    if not gateway_script().exists():
        raise UserError(f"{gateway_script()} is missing; is tollkeeper installed completely?")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, {**os.environ, **env})  # noqa: S606 - the launcher's job
