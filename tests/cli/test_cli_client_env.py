import json
import os
import subprocess


def test_prints_proxy_and_ca_exports_and_reverse_listeners_as_comments(run_cli, tmp_path):
    result = run_cli("client-env", "--confdir", str(tmp_path))
    assert result.exit_code == 0
    ca = str(tmp_path / "mitmproxy-ca-cert.pem")
    lines = result.stdout.splitlines()
    exports = [line for line in lines if line.startswith("export ")]
    assert exports == [
        "export HTTPS_PROXY=http://127.0.0.1:8080",
        f"export SSL_CERT_FILE={ca}",
        f"export REQUESTS_CA_BUNDLE={ca}",
        f"export NODE_EXTRA_CA_CERTS={ca}",
        "export NODE_USE_ENV_PROXY=1",  # Node's own fetch ignores HTTPS_PROXY without it
    ]
    assert "# export OPENAI_BASE_URL=http://127.0.0.1:8081/v1" in lines
    assert "# export ANTHROPIC_BASE_URL=http://127.0.0.1:8082" in lines
    assert "# export GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8083" in lines
    notes = "\n".join(lines)
    assert "Node >= 22.21 / 24" in notes and "EnvHttpProxyAgent" in notes
    assert "--gemini-port 8083" in notes and "http_options={'base_url'" in notes
    assert all(line.startswith(("export ", "#")) for line in lines)
    assert "does not exist yet" in result.stderr  # the CA is made on mitmproxy's first start


def test_host_port_and_default_confdir(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mitmproxy").mkdir()
    (tmp_path / ".mitmproxy" / "mitmproxy-ca-cert.pem").write_text("cert")
    result = run_cli("client-env", "--host", "gw.internal", "--port", "3128", "--json")
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["forward_proxy"] == {
        "HTTPS_PROXY": "http://gw.internal:3128",
        "SSL_CERT_FILE": str(tmp_path / ".mitmproxy" / "mitmproxy-ca-cert.pem"),
        "REQUESTS_CA_BUNDLE": str(tmp_path / ".mitmproxy" / "mitmproxy-ca-cert.pem"),
        "NODE_EXTRA_CA_CERTS": str(tmp_path / ".mitmproxy" / "mitmproxy-ca-cert.pem"),
        "NODE_USE_ENV_PROXY": "1",
    }
    assert data["reverse_listeners"] == {
        "OPENAI_BASE_URL": "http://gw.internal:8081/v1",
        "ANTHROPIC_BASE_URL": "http://gw.internal:8082",
        "GOOGLE_GEMINI_BASE_URL": "http://gw.internal:8083",
    }


def test_reverse_listener_ports(run_cli, tmp_path):
    args = ("--openai-port", "9001", "--anthropic-port", "9002", "--gemini-port", "9003")
    out = run_cli("client-env", "--confdir", str(tmp_path), *args).stdout
    assert "tollkeeper serve --openai-port 9001 --anthropic-port 9002 --gemini-port 9003" in out
    assert "# export GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:9003" in out


def test_output_can_be_evaluated_by_a_shell(run_cli, tmp_path):
    confdir = tmp_path / "conf dir"  # a space, to check the quoting
    out = run_cli("client-env", "--confdir", str(confdir)).stdout
    shell = f'{out}\nprintf "%s\\n" "$HTTPS_PROXY" "$SSL_CERT_FILE"'
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.splitlines() == [
        "http://127.0.0.1:8080",
        str(confdir / "mitmproxy-ca-cert.pem"),
    ]
