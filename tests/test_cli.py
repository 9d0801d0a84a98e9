"""The testing-center command: seed, users create, and demo serving /healthz."""

from __future__ import annotations

import json
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
from testing_center.accounts.models import Role, User
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


TOUR = SAMPLES_DIR / "item_types_tour.yaml"


def bank_size(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Item))


def test_items_import_and_qti_export_round_trip(runner, app, tmp_path):
    """YAML in, QTI 3.0 out, QTI back into an empty bank, QTI out again: the same items."""
    from item_bank.models import ItemEnemy, ItemEvent, ItemVersion, Media, Stimulus
    from item_bank.qti import read_qti

    imported = runner.invoke(args=["items", "import", str(TOUR), "--status", "approved"])
    assert imported.exit_code == 0, imported.output
    assert "items created: 15" in imported.output
    first = tmp_path / "first.zip"
    exported = runner.invoke(args=["items", "export", "--out", str(first)])
    assert exported.exit_code == 0, exported.output
    with app.app_context():
        for model in (ItemEvent, ItemEnemy, ItemVersion, Item, Stimulus, Media):
            db.session.query(model).delete()
        db.session.commit()
    again = runner.invoke(args=["items", "import", str(first), "--status", "approved"])
    assert again.exit_code == 0, again.output
    second = tmp_path / "second.zip"
    runner.invoke(args=["items", "export", "--out", str(second)])
    a, b = read_qti(first), read_qti(second)
    assert a.items == b.items and a.stimuli == b.stimuli and a.media == b.media
    assert len(a.items) == 15


def test_items_export_filters(runner, app, tmp_path):
    """Export filters by classification; an empty selection writes nothing."""
    runner.invoke(args=["items", "import", str(TOUR), "--status", "approved"])
    out = tmp_path / "listening.zip"
    result = runner.invoke(
        args=["items", "export", "--out", str(out), "--section", "tour_listening"]
    )
    assert "wrote 4 items" in result.output
    empty = runner.invoke(
        args=["items", "export", "--out", str(tmp_path / "x.zip"), "--section", "nothing"]
    )
    assert empty.exit_code != 0
    assert not (tmp_path / "x.zip").exists()


def test_items_import_refuses_broken_package_whole(runner, app, tmp_path):
    """A package with one broken file is refused, every problem listed, the bank unchanged."""
    import zipfile

    runner.invoke(args=["items", "import", str(TOUR), "--status", "approved"])
    before = bank_size(app)
    package = tmp_path / "broken.zip"
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("imsmanifest.xml", "<manifest")
    result = runner.invoke(args=["items", "import", str(package)])
    assert result.exit_code == 1
    assert "import refused, the bank is unchanged" in result.output
    assert "imsmanifest.xml" in result.output
    assert bank_size(app) == before


def test_items_import_default_is_draft(runner, app):
    """Imported items are drafts unless the importer says they are approved."""
    from item_bank.models import ItemVersion

    runner.invoke(args=["items", "import", str(TOUR)])
    with app.app_context():
        assert set(db.session.scalars(select(ItemVersion.status))) == {"draft"}


def test_templates_validate(runner, tmp_path):
    """`templates validate` checks the shipped files, and lists every problem of a bad one."""
    shipped = runner.invoke(args=["templates", "validate"])
    assert shipped.exit_code == 0, shipped.output
    assert "jlpt_n5.yaml: ok (jlpt-n5 v1, 67 items, 90 min)" in shipped.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: x\nversion: 0\nmodes: [online]\n", encoding="utf-8")
    result = runner.invoke(args=["templates", "validate", str(bad)])
    assert result.exit_code == 1
    assert "version must be a whole number" in result.output
    assert "modes must be" in result.output


def test_templates_assemble_parallel_forms(runner, app):
    """`templates assemble` draws parallel forms with as little overlap as the bank allows,
    and names what the bank lacks for a form it cannot build."""
    runner.invoke(args=["seed"])
    result = runner.invoke(args=["templates", "assemble", "jft-basic-practice", "--forms", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.count("form ") == 3
    assert "mean overlap between forms: 0%" in result.output
    short = runner.invoke(args=["templates", "assemble", "jlpt-n1"])
    assert short.exit_code == 1
    assert "the bank has" in short.output


LSAT6 = Path(__file__).parent / "data" / "lsat6.csv"


def test_scoring_calibrate_writes_parameters(runner, tmp_path):
    """`scoring calibrate` fits the model and writes its parameters as JSON."""
    out = tmp_path / "params.json"
    result = runner.invoke(
        args=[
            "scoring",
            "calibrate",
            "--responses",
            str(LSAT6),
            "--model",
            "2pl",
            "--out",
            str(out),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "log-likelihood -2466.65" in result.output
    assert (tmp_path / "plots" / "item_characteristic_curves.png").exists()
    assert (tmp_path / "plots" / "test_information.png").exists()
    params = json.loads(out.read_text())
    assert set(params) >= {"model", "D", "loglik", "converged", "iterations", "items"}
    assert (params["model"], params["D"], round(params["loglik"], 2)) == ("2pl", 1.0, -2466.65)
    assert list(params["items"]) == [f"item{n}" for n in range(1, 6)]
    assert [round(item["b"], 2) for item in params["items"].values()] == [
        -3.36,
        -1.37,
        -0.28,
        -1.87,
        -3.13,
    ]
    assert set(params["items"]["item1"]) >= {"a", "b", "c", "se_a", "se_b"}


def test_scoring_calibrate_scaling_and_rasch_convention(runner, tmp_path):
    """--scaling 1.702 divides the slopes by D; a Rasch document says which Rasch it is."""

    def calibrate(model, *extra):
        out = tmp_path / f"{model}{len(extra)}.json"
        result = runner.invoke(
            args=[
                "scoring",
                "calibrate",
                "--responses",
                str(LSAT6),
                "--model",
                model,
                "--out",
                str(out),
                *extra,
            ]
        )
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())

    plain, normal = calibrate("2pl"), calibrate("2pl", "--scaling", "1.702")
    assert normal["D"] == 1.702
    for item_id, item in plain["items"].items():
        assert normal["items"][item_id]["a"] == pytest.approx(item["a"] / 1.702)
        assert normal["items"][item_id]["b"] == pytest.approx(item["b"])
    rasch = calibrate("rasch")
    assert rasch["rasch"].startswith("common slope")
    assert len({round(item["a"], 6) for item in rasch["items"].values()}) == 1
    refused = runner.invoke(
        args=[
            "scoring",
            "calibrate",
            "--responses",
            str(LSAT6),
            "--out",
            str(tmp_path / "z"),
            "--scaling",
            "0",
        ]
    )
    assert refused.exit_code == 2 and not (tmp_path / "z").exists()


def test_scoring_refuses_bad_response_files(runner, tmp_path):
    """A response file with a bad cell is refused, naming the line and column."""
    bad = tmp_path / "bad.csv"
    bad.write_text("q1,q2\n1,2\n", encoding="utf-8")
    result = runner.invoke(args=["scoring", "analyze", "--responses", str(bad)])
    assert result.exit_code == 1
    assert "line 2" in result.output and "q2" in result.output


def test_scoring_analyze_writes_report(runner, tmp_path):
    """`scoring analyze` prints the item table with flags and writes CSV and JSON."""
    result = runner.invoke(
        args=["scoring", "analyze", "--responses", str(LSAT6), "--out", str(tmp_path / "report")]
    )
    assert result.exit_code == 0, result.output
    assert "1000 persons, 5 items" in result.output and "alpha 0.295" in result.output
    assert (tmp_path / "report" / "items.csv").read_text().startswith("item,")
    assert (tmp_path / "report" / "analysis.json").exists()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["n"] == 1000 and round(summary["alpha"], 3) == 0.295
    assert {"SEM", "mean", "SD"} <= set(summary)
    assert (tmp_path / "report" / "score_distribution.png").read_bytes()[:4] == b"\x89PNG"


def test_rescore_corrects_and_records(
    runner, app, client, make_candidate, make_staff, auth_headers, seeded
):
    """A wrong stored result is found by a dry run, corrected with --apply, and recorded
    with who and why; applying needs a staff account to answer for it."""
    from testing_center.attempts.models import Attempt, ScoreRevision

    operator = make_staff(Role.OPERATOR)
    headers = auth_headers(make_candidate())
    state = client.post(
        "/api/v1/attempts", json={"exam_code": "jft-basic-practice"}, headers=headers
    ).json
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    with app.app_context():  # a scoring error once stored a wrong result
        attempt = db.session.get(Attempt, state["id"])
        right = dict(attempt.result)
        attempt.result = {**right, "total": 250, "passed": True}
        db.session.commit()
    dry = runner.invoke(args=["scoring", "rescore", "--reason", "scale fix"])
    assert "1 changed, 1 pass/fail changed (dry run" in dry.output
    with app.app_context():
        assert db.session.get(Attempt, state["id"]).result["total"] == 250
    anonymous = runner.invoke(args=["scoring", "rescore", "--reason", "scale fix", "--apply"])
    assert anonymous.exit_code == 2 and "--by" in anonymous.output
    candidate = make_candidate()
    not_staff = runner.invoke(
        args=["scoring", "rescore", "--reason", "x", "--apply", "--by", candidate.email]
    )
    assert not_staff.exit_code == 1 and "not an operator" in not_staff.output
    applied = runner.invoke(
        args=["scoring", "rescore", "--reason", "scale fix", "--apply", "--by", operator.email]
    )
    assert applied.exit_code == 0, applied.output
    with app.app_context():
        assert db.session.get(Attempt, state["id"]).result == right
        [revision] = db.session.scalars(select(ScoreRevision)).all()
        assert (revision.previous["total"], revision.reason) == (250, "scale fix")
        assert (revision.actor_id, revision.reissue_pending) == (operator.id, True)
    again = runner.invoke(
        args=["scoring", "rescore", "--reason", "check", "--apply", "--by", operator.email]
    )
    assert "1 attempts checked, 0 changed" in again.output


def test_scoring_equate_links_two_calibrations(runner, tmp_path):
    """`scoring equate` prints {"A", "B"} found through the anchors and writes the linked form."""
    base = {f"i{n}": {"a": 0.8 + 0.1 * n, "b": -1.5 + 0.5 * n, "c": 0.0} for n in range(6)}
    shifted = {k: {**v, "a": v["a"] / 1.2, "b": 1.2 * v["b"] - 0.4} for k, v in base.items()}
    (tmp_path / "x.json").write_text(json.dumps({"model": "2pl", "D": 1, "items": base}))
    (tmp_path / "y.json").write_text(json.dumps({"model": "2pl", "D": 1, "items": shifted}))
    grid = {"points": [-2, 0, 2], "x_weights": [0.2, 0.6, 0.2], "y_weights": [0.3, 0.4, 0.3]}
    (tmp_path / "q.json").write_text(json.dumps(grid))
    out = tmp_path / "linked.json"
    common = ["scoring", "equate", "--from", str(tmp_path / "x.json")]
    common += ["--to", str(tmp_path / "y.json")]
    result = runner.invoke(
        args=[
            *common,
            "--method",
            "stocking-lord",
            "--quadrature",
            str(tmp_path / "q.json"),
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["A"] == pytest.approx(1.2, abs=1e-6)
    assert printed["B"] == pytest.approx(-0.4, abs=1e-6)
    assert printed["symmetric"] is True and len(printed["anchors"]) == 6
    linked = json.loads(out.read_text())
    assert linked["items"]["i0"]["b"] == pytest.approx(shifted["i0"]["b"], abs=1e-6)
    (tmp_path / "q.json").write_text(json.dumps({"points": [0], "x_weights": [1]}))
    bad = runner.invoke(args=[*common, "--quadrature", str(tmp_path / "q.json")])
    assert bad.exit_code == 1 and "y_weights" in bad.output


def test_scoring_responses_exports_attempts(
    runner, app, client, make_candidate, auth_headers, seeded, tmp_path
):
    """Finished attempts export as a response CSV that `scoring analyze` reads."""
    for _ in range(3):
        headers = auth_headers(make_candidate())
        state = client.post(
            "/api/v1/attempts", json={"exam_code": "jft-basic-practice"}, headers=headers
        ).json
        item = state["sections"][0]["items"][0]
        client.put(
            f"/api/v1/attempts/{state['id']}/responses/{item['ref']}",
            json={"response": item["options"][0]["id"], "client_seq": 1},
            headers=headers,
        )
        client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    out = tmp_path / "responses.csv"
    result = runner.invoke(
        args=["scoring", "responses", "--template", "jft-basic-practice", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    assert all(cell in ("", "0", "1") for line in lines[1:] for cell in line.split(","))
    assert "@" not in out.read_text()
    missing = runner.invoke(
        args=["scoring", "responses", "--template", "nope", "--out", str(tmp_path / "x.csv")]
    )
    assert missing.exit_code == 1
