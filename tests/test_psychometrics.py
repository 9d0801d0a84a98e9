"""Psychometrics on live attempts: analysis, calibration stored onto item versions, IRT
scoring that names its parameters, scoring corrections and re-scoring, and the pages."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import select

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.models import Item, ItemVersion
from item_bank.services import import_bundles
from testing_center.accounts.models import Role, User
from testing_center.api.schemas import ResultSchema
from testing_center.attempts.models import Attempt, FinishReason, ScoreRevision
from testing_center.attempts.presenters import attempt_result
from testing_center.attempts.services import (
    blueprint_of,
    finish_attempt,
    rescore_attempts,
    start_practice,
)
from testing_center.extensions import db
from testing_center.psychometrics.models import ItemVersionParameters, ParameterSet
from testing_center.psychometrics.services import (
    analyze_exam,
    calibrate_exam,
    correct_item,
    exam_responses,
    store_parameters,
)

from .conftest import PASSWORD

ITEMS = 10
DIFFICULTY = np.linspace(-1.5, 1.5, ITEMS)  # generating b of item psy-0 ... psy-9
FIXED, IRT = "psy-fixed", "psy-irt"


def bundle() -> Bundle:
    return Bundle(
        items=[
            {
                "ref": f"psy-{n}",
                "type": "single_choice",
                "exam_family": "psy",
                "level": "A2",
                "section": "all",
                "topic": "work",
                "stem": f"<p>問題 {n}</p>",
                "options": [{"id": k, "html": k} for k in "ABCD"],
                "key": "A",
            }
            for n in range(ITEMS)
        ],
        origin="psychometrics-test",
    )


def template(code: str, scoring: dict) -> dict:
    return {
        "code": code,
        "version": 1,
        "title": {"en": code},
        "modes": ["practice"],
        "clock": {"kind": "shared", "duration_seconds": 600},
        "shuffle": {"items": False, "options": False},
        "sections": [
            {
                "code": "all",
                "title": {"en": "All"},
                "select": {"exam_family": "psy", "section": "all", "count": ITEMS},
            }
        ],
        "scoring": scoring,
    }


IRT_SCORING = {
    "rule": "irt",
    "scale": {"min": 10, "max": 250},
    "theta_to_scale": {"slope": 40, "intercept": 150},
    "pass_mark": 200,
}


@pytest.fixture
def bank(app, clock):
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(
            db.session,
            [template(FIXED, {"rule": "percent", "pass_percent": 60}), template(IRT, IRT_SCORING)],
            now=clock(),
        )
        db.session.commit()


@pytest.fixture
def take(app, clock, make_candidate):
    """Factory: finish ``n`` attempts at ``code`` answered by simulated 2PL candidates.

    Right answers are "A"; wrong ones are spread over B, C and D, with D the distractor
    strong candidates avoid most. Returns the attempt ids.
    """
    candidate = make_candidate()

    def run(code: str, n: int, seed: int = 1, theta: float | None = None) -> list[str]:
        rng = np.random.default_rng(seed)
        ids = []
        with app.app_context():
            user = db.session.get(User, candidate.id)
            for _ in range(n):
                attempt, _new = start_practice(db.session, user, code, clock())
                ability = rng.normal() if theta is None else theta
                for attempt_item in attempt.items:
                    ref = attempt_item.item_version.item.ref
                    b = DIFFICULTY[int(ref.split("-")[1])]
                    right = rng.random() < 1 / (1 + np.exp(-1.2 * (ability - b)))
                    wrong = "D" if ability < -0.5 else rng.choice(["B", "C"])
                    attempt_item.response.value = "A" if right else str(wrong)
                finish_attempt(db.session, attempt, clock(), FinishReason.CANDIDATE)
                ids.append(attempt.id)
            db.session.commit()
        return ids

    return run


def test_exam_responses_are_the_scored_matrix(app, bank, take):
    """Finished attempts read as 1/0 per item, with the chosen options for distractors."""
    take(FIXED, 5)
    with app.app_context():
        data = exam_responses(db.session, FIXED)
    assert data.refs == tuple(sorted(f"psy-{n}" for n in range(ITEMS)))
    assert data.scores.shape == (5, ITEMS)
    assert set(np.unique(data.scores)) <= {0.0, 1.0}
    chosen = np.array(data.choices.choices)
    assert ((chosen == "A") == (data.scores == 1)).all()
    assert data.choices.keys == ["A"] * ITEMS
    assert data.csv_rows()[0] == list(data.refs)


def test_item_analysis_of_live_attempts_with_distractors(app, bank, take):
    """Easy items have higher p; the key draws the upper group, D the lower group."""
    take(FIXED, 120)
    with app.app_context():
        _data, analysis = analyze_exam(db.session, FIXED)
    by_id = {item.item_id: item for item in analysis.items}
    assert by_id["psy-0"].facility > by_id["psy-9"].facility  # b = -1.5 vs 1.5
    assert analysis.test.alpha is not None and analysis.test.alpha > 0.5
    options = {option.option: option for option in by_id["psy-5"].options}
    assert options["A"].is_key and options["A"].point_biserial > 0
    assert options["A"].upper_proportion > options["A"].lower_proportion
    assert options["D"].lower_proportion > options["D"].upper_proportion
    assert options["D"].point_biserial < 0


def test_analysis_needs_two_attempts(app, bank, take):
    take(FIXED, 1)
    with app.app_context(), pytest.raises(Exception, match="two finished attempts"):
        analyze_exam(db.session, FIXED)


def test_calibration_is_stored_and_named_in_irt_results(app, bank, take, clock):
    """Parameters calibrated on live data go onto the item versions; an IRT result then
    rests on them and names the parameter set; storing twice changes nothing."""
    take(FIXED, 300)
    with app.app_context():
        parameter_set = calibrate_exam(db.session, FIXED, "2pl", None, clock())
        document = parameter_set.document
        assert document["converged"] and document["D"] == 1.0
        b = [document["items"][f"psy-{n}"]["b"] for n in range(ITEMS)]
        assert np.corrcoef(b, DIFFICULTY)[0, 1] > 0.95
        assert store_parameters(db.session, parameter_set, None, clock()) == ITEMS
        assert store_parameters(db.session, parameter_set, None, clock()) == 0
        label = parameter_set.label
        db.session.commit()
    [low] = take(IRT, 1, theta=-3.0, seed=5)
    [high] = take(IRT, 1, theta=3.0, seed=6)
    with app.app_context():
        low_result = db.session.get(Attempt, low).result
        high_result = db.session.get(Attempt, high).result
        attempt = db.session.get(Attempt, low)
        shown = ResultSchema().dump(attempt_result(attempt, blueprint_of(attempt), "en"))
        assert shown["item_parameters"] == [label] and shown["theta"] == low_result["theta"]
    assert low_result["calibrated_items"] == high_result["calibrated_items"] == ITEMS
    assert low_result["item_parameters"] == [label]
    assert low_result["total"] < high_result["total"]
    assert low_result["conditional_sem"] > 0


def test_constant_items_are_left_out_of_calibration(app, bank, take, clock):
    """An item everyone answered right cannot be calibrated; it is named, the rest fit."""
    take(FIXED, 200)
    with app.app_context():
        for attempt_item_value in db.session.scalars(
            select(Attempt).where(Attempt.status == "finished")
        ):
            for attempt_item in attempt_item_value.items:
                if attempt_item.item_version.item.ref == "psy-3":
                    attempt_item.response.value = "A"
        db.session.commit()
        parameter_set = calibrate_exam(db.session, FIXED, "rasch", None, clock())
    assert parameter_set.document["excluded"] == {"psy-3": "everyone right"}
    assert "psy-3" not in parameter_set.document["items"]
    assert parameter_set.document["rasch"].startswith("common slope")


def test_key_correction_rescore_dry_run_equals_applied(app, bank, take, make_staff, clock):
    """A wrong key found later: the dry run lists exactly what applying then stores; the
    old results stay in history with who and why, and certificates are marked."""
    ids = take(FIXED, 30)
    operator = make_staff(Role.OPERATOR)
    with app.app_context():
        actor = db.session.get(User, operator.id)
        before = {i: db.session.get(Attempt, i).result for i in ids}
        correct_item(
            db.session,
            ref="psy-2",
            version=None,
            action="rekey",
            answer_key="B",
            reason="key error reported by reviewers",
            actor=actor,
            now=clock(),
        )
        checked, dry = rescore_attempts(
            db.session, reason="key fix", now=clock(), actor=actor, apply=False
        )
        assert {i: db.session.get(Attempt, i).result for i in ids} == before
        checked_again, applied = rescore_attempts(
            db.session, reason="key fix", now=clock(), actor=actor, apply=True
        )
        db.session.commit()
        assert checked == checked_again == 30 and dry
        assert [(c.attempt_id, c.current) for c in dry] == [
            (c.attempt_id, c.current) for c in applied
        ]
        for change in applied:
            assert db.session.get(Attempt, change.attempt_id).result == change.current
        revisions = db.session.scalars(select(ScoreRevision)).all()
        assert len(revisions) == len(applied)
        assert all(r.actor_id == operator.id and r.reissue_pending for r in revisions)
        assert {r.attempt_id: r.previous for r in revisions} == {
            c.attempt_id: before[c.attempt_id] for c in applied
        }


@pytest.mark.parametrize(("action", "expected_max"), [("credit_all", ITEMS), ("drop", ITEMS - 1)])
def test_credit_all_and_drop(app, bank, take, clock, action, expected_max):
    """Crediting an item gives every candidate its point; dropping removes it from the maximum."""
    ids = take(FIXED, 4)
    with app.app_context():
        correct_item(
            db.session,
            ref="psy-9",
            version=None,
            action=action,
            answer_key=None,
            reason="ambiguous picture",
            actor=None,
            now=clock(),
        )
        rescore_attempts(db.session, reason="psy-9", now=clock())
        for attempt_id in ids:
            result = db.session.get(Attempt, attempt_id).result
            assert result["raw_max"] == expected_max
        data = exam_responses(db.session, FIXED)
        assert "psy-9" not in data.refs  # no longer measures anything
        correct_item(
            db.session,
            ref="psy-9",
            version=None,
            action="restore",
            answer_key=None,
            reason="undo",
            actor=None,
            now=clock(),
        )
        rescore_attempts(db.session, reason="undo", now=clock())
        assert all(db.session.get(Attempt, i).result["raw_max"] == ITEMS for i in ids)


def test_bad_corrections_are_refused_and_change_nothing(app, bank, clock):
    with app.app_context():
        for arguments, message in (
            ({"ref": "psy-1", "action": "rekey", "answer_key": "Z"}, "not one of the option"),
            ({"ref": "psy-1", "action": "shrug", "answer_key": None}, "rekey, credit_all"),
            ({"ref": "nope", "action": "drop", "answer_key": None}, "no such item"),
            ({"ref": "psy-1", "action": "drop", "answer_key": None, "reason": " "}, "why"),
        ):
            with pytest.raises(Exception, match=message):
                correct_item(
                    db.session,
                    **{"version": None, "reason": "r", "actor": None, "now": clock(), **arguments},
                )
        db.session.rollback()
        version = db.session.scalar(select(ItemVersion).join(Item).where(Item.ref == "psy-1"))
        assert version.answer_key == "A"


# ---- pages ---------------------------------------------------------------------------


def sign_in(client, email: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def csrf(client, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)


def test_operator_pages_analyse_calibrate_store_and_rescore(app, client, bank, take, make_staff):
    app.config["WTF_CSRF_ENABLED"] = True
    take(FIXED, 150)
    operator = make_staff(Role.OPERATOR)
    sign_in(client, operator.email)
    listing = client.get("/staff/psychometrics/")
    assert listing.status_code == 200 and FIXED in listing.text
    page = client.get(f"/staff/psychometrics/{FIXED}")
    assert page.status_code == 200
    assert 'id="item-statistics"' in page.text and "psy-9" in page.text
    assert "A*:" in page.text  # the key marked in the distractor column
    plot = client.get(f"/staff/psychometrics/{FIXED}/scores.png")
    assert plot.mimetype == "image/png" and plot.data[:4] == b"\x89PNG"
    report = client.get(f"/staff/psychometrics/{FIXED}/items.csv")
    assert report.mimetype == "text/csv" and report.text.startswith("item,")

    token = csrf(client, f"/staff/psychometrics/{FIXED}")
    calibrated = client.post(
        f"/staff/psychometrics/{FIXED}/calibrate", data={"model": "2pl", "csrf_token": token}
    )
    assert calibrated.status_code == 302
    set_url = calibrated.headers["Location"]
    shown = client.get(set_url)
    assert shown.status_code == 200 and 'id="parameters"' in shown.text
    for kind in ("icc", "information"):
        image = client.get(f"{set_url}/{kind}.png")
        assert image.status_code == 200 and image.data[:4] == b"\x89PNG"
    stored = client.post(f"{set_url}/store", data={"csrf_token": token})
    assert stored.status_code == 302
    with app.app_context():
        [parameter_set] = db.session.scalars(select(ParameterSet)).all()
        assert parameter_set.stored_by_id == operator.id
        assert db.session.query(ItemVersionParameters).count() == ITEMS

    corrected = client.post(
        f"/staff/psychometrics/{FIXED}/corrections",
        data={
            "ref": "psy-4",
            "action": "rekey",
            "key": '"C"',
            "reason": "typo",
            "csrf_token": token,
        },
    )
    assert corrected.status_code == 302 and corrected.headers["Location"].endswith("/rescore")
    dry = client.get(f"/staff/psychometrics/{FIXED}/rescore")
    assert "150 finished attempts checked" in dry.text and 'id="changes"' in dry.text
    with app.app_context():
        assert not db.session.scalars(select(ScoreRevision)).all()
    applied = client.post(
        f"/staff/psychometrics/{FIXED}/rescore", data={"reason": "typo", "csrf_token": token}
    )
    assert applied.status_code == 302
    with app.app_context():
        revisions = db.session.scalars(select(ScoreRevision)).all()
        assert revisions and all(r.actor_id == operator.id for r in revisions)


def test_pages_refuse_bad_input_and_other_roles(app, client, bank, take, make_staff, clock):
    app.config["WTF_CSRF_ENABLED"] = True
    take(FIXED, 3)
    author = make_staff(Role.AUTHOR)
    sign_in(client, author.email)
    assert client.get(f"/staff/psychometrics/{FIXED}").status_code == 403
    client.get("/logout")
    operator = make_staff(Role.OPERATOR)
    client2 = app.test_client()
    sign_in(client2, operator.email)
    assert client2.get("/staff/psychometrics/no-such-exam").status_code == 404
    token = csrf(client2, f"/staff/psychometrics/{FIXED}")
    bad_model = client2.post(
        f"/staff/psychometrics/{FIXED}/calibrate", data={"model": "9pl", "csrf_token": token}
    )
    assert bad_model.status_code == 400
    no_token = client2.post(f"/staff/psychometrics/{FIXED}/calibrate", data={"model": "2pl"})
    assert no_token.status_code in (400, 403)
    bad_key = client2.post(
        f"/staff/psychometrics/{FIXED}/corrections",
        data={
            "ref": "psy-1",
            "action": "rekey",
            "key": "{not json",
            "reason": "r",
            "csrf_token": token,
        },
        follow_redirects=True,
    )
    assert "must be JSON" in bad_key.text
    no_reason = client2.post(
        f"/staff/psychometrics/{FIXED}/rescore",
        data={"reason": "", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Say why" in no_reason.text
    with app.app_context():
        assert not db.session.scalars(select(ScoreRevision)).all()
