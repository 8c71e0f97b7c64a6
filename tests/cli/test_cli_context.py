import getpass

import click
import pytest
from sqlalchemy.exc import OperationalError

from addon.store.db import StoreUnavailable
from addon.store.errors import Conflict, NotFound
from addon.vault import VaultError
from cli.context import App, UsageProblem, UserError, default_actor, one_line, safe_url, translate


@pytest.mark.parametrize(
    "error", [StoreUnavailable("x"), NotFound("x"), Conflict("x"), VaultError("x"), ValueError("x")]
)
def test_domain_errors_become_user_errors(error):
    friendly = translate(error)
    assert isinstance(friendly, UserError) and friendly.exit_code == 1
    assert friendly.format_message() == "x"


def test_database_errors_show_the_driver_message_in_one_line():
    error = OperationalError("SELECT 1", {}, Exception("database is locked\nmore detail"))
    friendly = translate(error)
    assert friendly is not None
    assert friendly.format_message() == "database error: database is locked more detail"


def test_usage_errors_keep_exit_status_2():
    friendly = translate(click.UsageError("bad"))
    assert isinstance(friendly, UsageProblem) and friendly.exit_code == 2


def test_bugs_are_not_translated():
    assert translate(KeyError("x")) is None
    assert translate(TypeError("x")) is None


def test_one_line():
    assert one_line("  first\n\n  second  \n") == "first second"


def test_safe_url_hides_passwords():
    assert safe_url("postgresql+psycopg://u:pw@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert safe_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert safe_url("::not a url::") == "<unparsable URL>"


def test_default_actor_falls_back_to_the_uid(monkeypatch):
    def no_user() -> str:
        raise OSError("no user")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert default_actor().startswith("uid:")


def test_actor_option_wins_over_login_name(monkeypatch):
    monkeypatch.setenv("LOGNAME", "someone")
    assert App(actor_option="ci").actor == "ci"
    assert App().actor == "someone"


def test_app_settings_follow_options_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TOLLKEEPER_HOME", str(tmp_path / "env-home"))
    monkeypatch.delenv("TOLLKEEPER_DB", raising=False)
    assert App().settings.home == tmp_path / "env-home"
    app = App(home=str(tmp_path / "opt-home"), db="postgresql://u@h/db")
    assert app.settings.home == tmp_path / "opt-home"
    assert app.settings.db_url == "postgresql+psycopg://u@h/db"
