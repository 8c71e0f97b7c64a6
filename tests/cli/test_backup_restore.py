"""The README's backup recipe for SQLite: `sqlite3 DB ".backup FILE"` while the database is
open, then the master key plus that file are a working gateway state (real keys included)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

SQLITE3 = shutil.which("sqlite3")
SECRET = "sk-backup-test-00000000000000000000000000wxyz"


@pytest.mark.skipif(SQLITE3 is None, reason="the sqlite3 command is not installed")
def test_backup_with_sqlite3_and_the_master_key_restores_keys(run_cli, tk_home, tmp_path):
    add = ("providers", "add", "openai", "--api-key-stdin", "--label", "main")
    assert run_cli(*add, input=SECRET + "\n").exit_code == 0
    created = json.loads(run_cli("keys", "create", "--project", "Backed Up", "--json").stdout)
    backup = tmp_path / "backup.db"
    database = tk_home / "tollkeeper.db"
    subprocess.run([str(SQLITE3), str(database), f".backup '{backup}'"], check=True)

    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copyfile(backup, restored / "tollkeeper.db")
    shutil.copyfile(tk_home / "master.key", restored / "master.key")
    env = {"TOLLKEEPER_HOME": str(restored)}
    keys = json.loads(run_cli("keys", "list", "--json", env=env).stdout)
    assert [k["id"] for k in keys] == [created["id"]]
    (real,) = json.loads(run_cli("providers", "list", "--json", env=env).stdout)
    assert (real["label"], real["readable"]) == ("main", True)  # decrypts with the backed-up key


@pytest.mark.skipif(SQLITE3 is None, reason="the sqlite3 command is not installed")
def test_the_database_without_its_master_key_loses_the_real_keys(run_cli, tk_home, tmp_path):
    assert (
        run_cli("providers", "add", "openai", "--api-key-stdin", input=SECRET + "\n").exit_code == 0
    )
    backup = tmp_path / "backup.db"
    subprocess.run(
        [str(SQLITE3), str(tk_home / "tollkeeper.db"), f".backup '{backup}'"], check=True
    )
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copyfile(backup, restored / "tollkeeper.db")  # a new master.key is made on first use
    listed = run_cli("providers", "list", "--json", env={"TOLLKEEPER_HOME": str(restored)})
    (real,) = json.loads(listed.stdout)
    assert real["readable"] is False
