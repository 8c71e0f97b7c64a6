"""What every command shares: settings, the actor, one store per command, error translation.

The root group puts an ``App`` on the click context; commands take it with ``@pass_app``.
Domain errors and click usage errors become ``UserError``: one line on stderr starting
with ``Error:``, a non-zero exit, never a traceback.

SQLAlchemy is imported only when a command opens the store (``keys list`` and ``usage`` may
not), the vault (``cryptography``) only when a command needs real keys.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from addon.settings import Settings, resolve
from addon.store.errors import Conflict, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from addon.vault import Vault

# Errors whose message is meant for the user as it stands.
USER_ERRORS = (StoreUnavailable, NotFound, Conflict, ValueError)


class UserError(click.ClickException):
    """A one-line error for the user (``Error: …``), whatever its cause. Exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class UsageProblem(UserError):
    """A command line click cannot parse, in one line. Exit status 2, as click's own."""

    exit_code = 2


def one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.strip().splitlines() if line.strip())


def translate(error: Exception) -> UserError | None:
    """The one-line error to show for ``error``, or None when it is a bug."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        return None  # shows the help text, as it should
    if isinstance(error, click.UsageError):
        hint = ""
        if error.ctx is not None:
            hint = f" See '{error.ctx.command_path} --help'."
        return UsageProblem(error.format_message() + hint)
    if isinstance(error, USER_ERRORS) or _is_vault_error(error):
        return UserError(str(error) or type(error).__name__)
    if _is_sqlalchemy_error(error):
        orig = getattr(error, "orig", None)
        return UserError(f"database error: {orig if orig is not None else error}")
    return None


def _is_vault_error(error: Exception) -> bool:
    """Whether ``error`` is the vault's (its module, and ``cryptography``, load only when a
    command needs real keys)."""
    vault = sys.modules.get("addon.vault")
    return vault is not None and isinstance(error, vault.VaultError)


def _is_sqlalchemy_error(error: Exception) -> bool:
    """Whether ``error`` is SQLAlchemy's: only possible once SQLAlchemy has been imported."""
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.SQLAlchemyError)


def safe_url(url: str) -> str:
    """A database URL fit to print: the password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a container uid without passwd entry)
        return f"uid:{os.getuid()}"


@dataclass
class App:
    """Per-invocation state: global options and a lazily opened store."""

    home: str | None = None
    db: str | None = None
    actor_option: str | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        return resolve(home=self.home, db_url=self.db)

    @property
    def actor(self) -> str:
        return self.actor_option or default_actor()

    def engine(self) -> Engine:
        """The store, opened (and migrated) once per command."""
        if self._engine is None:
            from addon.store.db import open_store

            url = self.settings.db_url
            try:
                self._engine = open_store(url)
            except StoreUnavailable as e:
                raise UserError(f"{e} ({safe_url(url)})") from e
            except OSError as e:
                raise UserError(f"cannot open database {safe_url(url)}: {e}") from e
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        from sqlmodel import Session

        with Session(self.engine()) as s:
            yield s

    def vault(self) -> Vault:
        """The vault for real keys; creates ``<home>/master.key`` (0600) on first use."""
        from addon.vault import Vault, load_master_key

        path = self.settings.master_key_path
        try:
            return Vault(load_master_key(path))
        except OSError as e:
            raise UserError(f"cannot read or create master key {path}: {e.strerror}") from e

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


pass_app = click.make_pass_decorator(App, ensure=True)
