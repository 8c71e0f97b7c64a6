"""``tollkeeper client-env``: the environment a client needs to go through the gateway.

Prints shell ``export`` lines, so ``eval "$(tollkeeper client-env)"`` works.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from cli.output import note, print_json

CA_FILE = "mitmproxy-ca-cert.pem"
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")


def proxy_env(*, host: str, port: int, ca_path: Path) -> dict[str, str]:
    env = {"HTTPS_PROXY": f"http://{host}:{port}"}
    env.update(dict.fromkeys(CA_VARIABLES, str(ca_path)))
    return env


def reverse_env(*, host: str, openai_port: int, anthropic_port: int) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": f"http://{host}:{openai_port}/v1",
        "ANTHROPIC_BASE_URL": f"http://{host}:{anthropic_port}",
    }


@click.command(name="client-env")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the gateway runs.")
@click.option("--port", type=int, default=8080, show_default=True, help="Its forward-proxy port.")
@click.option(
    "--confdir",
    type=click.Path(file_okay=False, path_type=Path),
    default="~/.mitmproxy",
    show_default=True,
    help="mitmproxy's configuration directory (holds the CA certificate).",
)
@click.option("--openai-port", type=int, default=8081, show_default=True, help="Reverse listener.")
@click.option(
    "--anthropic-port", type=int, default=8082, show_default=True, help="Reverse listener."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead.")
def client_env(
    host: str, port: int, confdir: Path, openai_port: int, anthropic_port: int, as_json: bool
) -> None:
    """Print the export lines a client needs to use the gateway as its HTTPS proxy.

    The client also needs a virtual key in place of its provider key (OPENAI_API_KEY,
    ANTHROPIC_API_KEY, …); see 'tollkeeper keys create'. The reverse listeners (no proxy, no
    CA) are shown as comments; they need 'tollkeeper serve --openai-port … --anthropic-port …'.
    """
    ca_path = confdir.expanduser() / CA_FILE
    forward = proxy_env(host=host, port=port, ca_path=ca_path)
    reverse = reverse_env(host=host, openai_port=openai_port, anthropic_port=anthropic_port)
    if not ca_path.exists():
        note(f"Note: {ca_path} does not exist yet; mitmproxy creates it on its first start.")
    if as_json:
        print_json({"forward_proxy": forward, "reverse_listeners": reverse})
        return
    click.echo("# Forward proxy: every HTTPS request goes through the gateway.")
    for name, value in forward.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo("# SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace the default CA store: a client")
    click.echo("# that also calls other HTTPS hosts needs a bundle of both (certifi + this CA).")
    click.echo("# Or, without proxy and CA, point the SDKs at the reverse listeners:")
    for name, value in reverse.items():
        click.echo(f"# export {name}={shlex.quote(value)}")
