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
# Why each line is there, printed under the exports (true of the SDKs tested in tests/).
FORWARD_NOTES = (
    "Python SDKs (openai, anthropic, google-genai; httpx, requests) read HTTPS_PROXY and",
    "  trust the CA through SSL_CERT_FILE / REQUESTS_CA_BUNDLE. These replace the default CA",
    "  store: a client that also calls other HTTPS hosts needs a bundle of both (certifi + CA).",
    "Node trusts the CA through NODE_EXTRA_CA_CERTS, but its built-in fetch (the openai",
    "  package and other fetch-based SDKs) ignores HTTPS_PROXY unless NODE_USE_ENV_PROXY=1,",
    "  which only Node >= 22.21 / 24 reads. On older Node use the base URLs below, or undici's",
    "  agent: setGlobalDispatcher(new EnvHttpProxyAgent()) from the 'undici' package.",
)


def proxy_env(*, host: str, port: int, ca_path: Path) -> dict[str, str]:
    env = {"HTTPS_PROXY": f"http://{host}:{port}"}
    env.update(dict.fromkeys(CA_VARIABLES, str(ca_path)))
    env["NODE_USE_ENV_PROXY"] = "1"
    return env


def reverse_env(
    *, host: str, openai_port: int, anthropic_port: int, gemini_port: int
) -> dict[str, str]:
    """The SDKs' own base-URL variables: OpenAI-style bases end in /v1, the others have none
    (the SDKs add /v1/messages, /v1beta/models/… themselves)."""
    return {
        "OPENAI_BASE_URL": f"http://{host}:{openai_port}/v1",
        "ANTHROPIC_BASE_URL": f"http://{host}:{anthropic_port}",
        "GOOGLE_GEMINI_BASE_URL": f"http://{host}:{gemini_port}",
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
@click.option("--gemini-port", type=int, default=8083, show_default=True, help="Reverse listener.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead.")
def client_env(
    host: str,
    port: int,
    confdir: Path,
    openai_port: int,
    anthropic_port: int,
    gemini_port: int,
    as_json: bool,
) -> None:
    """Print the export lines a client needs to use the gateway as its HTTPS proxy.

    The client also needs a virtual key in place of its provider key (OPENAI_API_KEY,
    ANTHROPIC_API_KEY, GEMINI_API_KEY, …); see 'tollkeeper keys create'. The reverse
    listeners (no proxy, no CA) are shown as comments; they need 'tollkeeper serve
    --openai-port 8081 --anthropic-port 8082 --gemini-port 8083'.
    """
    ca_path = confdir.expanduser() / CA_FILE
    forward = proxy_env(host=host, port=port, ca_path=ca_path)
    reverse = reverse_env(
        host=host, openai_port=openai_port, anthropic_port=anthropic_port, gemini_port=gemini_port
    )
    if not ca_path.exists():
        note(f"Note: {ca_path} does not exist yet; mitmproxy creates it on its first start.")
    if as_json:
        print_json({"forward_proxy": forward, "reverse_listeners": reverse})
        return
    click.echo("# Forward proxy: every HTTPS request goes through the gateway.")
    for name, value in forward.items():
        click.echo(f"export {name}={shlex.quote(value)}")
    for line in FORWARD_NOTES:
        click.echo(f"# {line}")
    click.echo("# Or, without proxy and CA, point the SDKs at the reverse listeners")
    click.echo(
        f"# (tollkeeper serve --openai-port {openai_port} --anthropic-port {anthropic_port}"
        f" --gemini-port {gemini_port});"
    )
    click.echo(
        "# google-genai also takes Client(http_options={'base_url': GOOGLE_GEMINI_BASE_URL}):"
    )
    for name, value in reverse.items():
        click.echo(f"# export {name}={shlex.quote(value)}")
