"""The testing-center command: seed, users create, and demo serving /healthz."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from item_bank.models import Item
from item_bank.services import SAMPLES_DIR, read_yaml_bundle
from testing_center.accounts.models import User
from testing_center.extensions import db


def sample_item_count() -> int:
    return sum(len(read_yaml_bundle(path).items) for path in SAMPLES_DIR.glob("*.yaml"))


def test_seed_is_idempotent(runner, app):
    """Seeding twice loads the sample bank once."""
    shipped = sample_item_count()
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert f"items created: {shipped}," in first.output
    second = runner.invoke(args=["seed"])
    assert f"items created: 0, new versions: 0, unchanged: {shipped}" in second.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Item)) == shipped


def test_users_create_reads_password_from_stdin(runner, app, client):
    """`users create` takes the first line of stdin as the password; the account can sign in."""
    result = runner.invoke(
        args=["users", "create", "--email", "Op@Centre.test", "--role", "operator"],
        input="a-strong-password\nignored\n",
    )
    assert result.exit_code == 0, result.output
    assert "created operator op@centre.test" in result.output
    token = client.post(
        "/api/v1/auth/token", json={"email": "op@centre.test", "password": "a-strong-password"}
    )
    assert token.status_code == 200


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--email", "x@y.test", "--role", "wizard"], "a-strong-password\n", "Invalid value"),
        (["--email", "x@y.test", "--role", "admin"], "short\n", "10 to 128 characters"),
    ],
)
def test_users_create_refuses_bad_input(runner, app, args, stdin, message):
    """A bad role or weak password is refused and no account is created."""
    result = runner.invoke(args=["users", "create", *args], input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_users_create_refuses_taken_email(runner, app):
    """Creating an account for a taken address fails with a message."""
    args = ["users", "create", "--email", "a@b.test", "--role", "proctor"]
    assert runner.invoke(args=args, input="a-strong-password\n").exit_code == 0
    again = runner.invoke(args=args, input="a-strong-password\n")
    assert again.exit_code != 0
    assert "exists" in again.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_command_serves_healthz(tmp_path: Path):
    """`testing-center demo` migrates, seeds, prints the demo accounts and serves /healthz."""
    port = free_port()
    env = {**os.environ, "TESTING_CENTER_INSTANCE": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    command = [
        sys.executable,
        "-c",
        "from testing_center.cli import main; main()",
        "demo",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert body == '{"database":"ok","status":"ok"}\n'
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "candidate@demo.test" in output
    assert "proctor@demo.test" in output
    assert (tmp_path / "testing_center.sqlite3").exists()
