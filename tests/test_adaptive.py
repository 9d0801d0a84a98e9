"""Adaptive sections through the JSON API: one item at a time, chosen by the server.

The sample bank has no calibrated items, so these tests import their own bank: 2PL
single-choice items with ``difficulty.irt`` parameters spread over three topics.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import yaml
from sqlalchemy import func, select

from exam_templates.blueprint import parse_blueprint
from exam_templates.errors import InvalidTemplate
from exam_templates.services import load_templates
from item_bank.models import Item, ItemVersion
from item_bank.services import import_bundles, read_yaml_bundle
from scoring.irt import ItemParameters, estimate_ability
from testing_center.attempts.models import AttemptItem, Response
from testing_center.extensions import db

from .test_browser import (  # noqa: F401 - fixtures of the browser test
    browser,
    live_server,
    page,
    sign_in_and_start,
)

EXAM = "cat-practice"
N_ITEMS = 40
TOPICS = ("kanji", "vocabulary", "grammar")
FORBIDDEN_KEYS = {
    "answer_key",
    "key",
    "correct",
    "is_correct",
    "explanation",
    "points",
    "scoring",
    "irt",
    "difficulty",
    "theta",
    "se",
    "a",
    "b",
    "c",
    "ability",
    "exposure",
}

TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"en": "Adaptive vocabulary practice"},
    "modes": ["practice"],
    "clock": {"kind": "shared", "duration_seconds": 1800},
    "navigation": "sequential",
    "shuffle": {"options": True},
    "sections": [
        {
            "code": "vocabulary",
            "title": {"en": "Vocabulary"},
            "adaptive": {
                "pool": {"exam_family": "cattest"},
                "min_items": 3,
                "max_items": 6,
                "se_target": None,
                "exposure": {"method": "randomesque", "k": 2},
                "content": {"kanji": 0.4, "vocabulary": 0.3, "grammar": 0.3},
            },
        }
    ],
    "scoring": {
        "rule": "irt",
        "scale": {"min": 0, "max": 100},
        "theta_to_scale": {"slope": 10, "intercept": 50},
        "pass_mark": 50,
    },
}


def template(**adaptive) -> dict:
    """The test template with its adaptive settings changed."""
    document = copy.deepcopy(TEMPLATE)
    document["sections"][0]["adaptive"].update(adaptive)
    return document


def bank_items(n_items: int = N_ITEMS, seed: int = 5) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "ref": f"cat-{j + 1:02d}",
            "type": "single_choice",
            "exam_family": "cattest",
            "level": "A2",
            "section": "vocabulary",
            "topic": TOPICS[j % 3],
            "stem": f"<p>問題 {j + 1}</p>",
            "options": [{"id": k, "html": f"<p>{k}</p>"} for k in "ABCD"],
            "key": "ABCD"[j % 4],
            "difficulty": {
                "irt": {
                    "model": "2pl",
                    "a": round(float(rng.lognormal(0.2, 0.2)), 3),
                    "b": round(float(rng.normal(0, 1)), 3),
                }
            },
        }
        for j in range(n_items)
    ]


@pytest.fixture
def load_template(app, clock):
    """Factory: load a template document (default: TEMPLATE)."""

    def load(document: dict | None = None) -> None:
        with app.app_context():
            load_templates(db.session, [document or TEMPLATE], now=clock())
            db.session.commit()

    return load


@pytest.fixture
def load_exam(app, clock, tmp_path, load_template):
    """Factory: import the calibrated bank (or ``items``) and load a template."""

    def load(document: dict | None = None, items: list[dict] | None = None) -> None:
        path = tmp_path / "bank.yaml"
        path.write_text(
            yaml.safe_dump({"items": bank_items() if items is None else items}, allow_unicode=True),
            encoding="utf-8",
        )
        with app.app_context():
            import_bundles(db.session, [read_yaml_bundle(path)], status="approved", now=clock())
            db.session.commit()
        load_template(document)

    return load


@pytest.fixture
def candidate(make_candidate, auth_headers):
    return auth_headers(make_candidate())


def start(client, headers, status=201) -> dict:
    response = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers)
    assert response.status_code == status, response.json
    return response.json


def state_of(client, headers, attempt_id) -> dict:
    response = client.get(f"/api/v1/attempts/{attempt_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def current_item(state: dict) -> dict:
    (section,) = state["sections"]
    (item,) = section["items"]
    return item


def save(client, headers, attempt_id, ref, response, seq):
    return client.put(
        f"/api/v1/attempts/{attempt_id}/responses/{ref}",
        json={"response": response, "client_seq": seq},
        headers=headers,
    )


def keys(app, attempt_id: str) -> dict[str, str]:
    with app.app_context():
        rows = db.session.execute(
            select(AttemptItem.ref, ItemVersion.answer_key)
            .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
            .where(AttemptItem.attempt_id == attempt_id)
        )
        return dict(rows.all())


def given_items(app, attempt_id: str) -> list[tuple[str, str, float, float]]:
    """(attempt ref, bank ref, a, b) of the attempt's items in order."""
    with app.app_context():
        rows = db.session.execute(
            select(AttemptItem.ref, Item.ref, ItemVersion.details)
            .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
            .join(Item, Item.id == ItemVersion.item_id)
            .where(AttemptItem.attempt_id == attempt_id)
            .order_by(AttemptItem.position)
        )
        return [
            (ref, bank_ref, details["difficulty"]["irt"]["a"], details["difficulty"]["irt"]["b"])
            for ref, bank_ref, details in rows
        ]


def answer(client, headers, app, state, right: bool, seq: int):
    """Answer the current item right or wrong; return the save's response."""
    item = current_item(state)
    key = keys(app, state["id"])[item["ref"]]
    choice = key if right else next(o["id"] for o in item["options"] if o["id"] != key)
    return save(client, headers, state["id"], item["ref"], choice, seq)


def stored_value(app, attempt_id: str, ref: str):
    with app.app_context():
        return db.session.scalar(
            select(Response.value)
            .join(AttemptItem, AttemptItem.id == Response.attempt_item_id)
            .where(AttemptItem.attempt_id == attempt_id, AttemptItem.ref == ref)
        )


def count_items(app, attempt_id: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(AttemptItem)
            .where(AttemptItem.attempt_id == attempt_id)
        )


def test_start_shows_one_item_of_an_adaptive_section(client, candidate, load_exam):
    """A new attempt holds exactly the first adaptive item; the section says it is adaptive."""
    load_exam()
    state = start(client, candidate)
    (section,) = state["sections"]
    assert section["adaptive"] is True
    assert section["status"] == "open"
    assert (section["item_count"], section["max_items"]) == (1, 6)
    assert state["navigation"] == "sequential"
    item = current_item(state)
    assert item["response"] is None
    assert state["item_count"] == 1


def test_next_item_appears_only_after_the_save(client, candidate, load_exam, app):
    """Reading the state changes nothing; an acknowledged answer brings a new current item."""
    load_exam()
    state = start(client, candidate)
    first = current_item(state)
    for _ in range(2):
        again = state_of(client, candidate, state["id"])
        assert current_item(again)["ref"] == first["ref"]
    assert count_items(app, state["id"]) == 1
    ack = answer(client, candidate, app, state, True, 1)
    assert ack.status_code == 200, ack.json
    assert ack.json["accepted"] is True
    after = state_of(client, candidate, state["id"])
    second = current_item(after)
    assert second["ref"] != first["ref"]
    assert second["response"] is None
    assert after["sections"][0]["item_count"] == 2
    assert after["answered_count"] == 1


def test_clearing_or_flagging_does_not_advance(client, candidate, load_exam, app):
    """Only an answer advances the test: a null response leaves the current item in place."""
    load_exam()
    state = start(client, candidate)
    ref = current_item(state)["ref"]
    response = client.put(
        f"/api/v1/attempts/{state['id']}/responses/{ref}",
        json={"response": None, "client_seq": 1, "flagged": True},
        headers=candidate,
    )
    assert response.status_code == 200
    assert current_item(state_of(client, candidate, state["id"]))["ref"] == ref
    assert count_items(app, state["id"]) == 1


def test_replayed_or_stale_save_does_not_advance_twice(client, candidate, load_exam, app):
    """A retry of the stored save is acknowledged without moving on; a change is refused."""
    load_exam()
    state = start(client, candidate)
    first = current_item(state)
    key = keys(app, state["id"])[first["ref"]]
    assert save(client, candidate, state["id"], first["ref"], key, 5).json["accepted"]
    assert count_items(app, state["id"]) == 2
    replay = save(client, candidate, state["id"], first["ref"], key, 5)
    assert replay.status_code == 200
    assert replay.json["accepted"] is True
    assert count_items(app, state["id"]) == 2
    stale = save(client, candidate, state["id"], first["ref"], key, 3)
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "answer_final"
    other = next(o["id"] for o in first["options"] if o["id"] != key)
    changed = save(client, candidate, state["id"], first["ref"], other, 6)
    assert changed.status_code == 409
    assert changed.json["error"]["code"] == "answer_final"
    assert count_items(app, state["id"]) == 2
    assert stored_value(app, state["id"], first["ref"]) == key
    assert current_item(state_of(client, candidate, state["id"]))["ref"] != first["ref"]


def _walk(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner)


def test_no_keys_or_parameters_in_payloads(client, candidate, load_exam, app):
    """States and acknowledgements carry no key, no parameters, no ability."""
    load_exam()
    state = start(client, candidate)
    ack = answer(client, candidate, app, state, True, 1).json
    after = state_of(client, candidate, state["id"])
    for payload in (state, ack, after):
        assert not FORBIDDEN_KEYS & set(_walk(payload))
        text = json.dumps(payload)
        assert "2pl" not in text
        assert "cattest" not in text  # no classification
        assert not re.search(r"cat-\d", text)  # no bank refs
    assert set(current_item(after)) == {
        "ref",
        "position",
        "type",
        "stem",
        "options",
        "response",
        "flagged",
        "client_seq",
    }


def test_fixed_length_test_stops_and_is_scored_with_irt(client, candidate, load_exam, app):
    """After max_items answers the section closes, the attempt finishes and is scored by
    EAP over exactly the items given."""
    load_exam()
    state = start(client, candidate)
    pattern = [True, True, False, True, False, True]
    for seq, right in enumerate(pattern, start=1):
        assert state["status"] == "in_progress"
        ack = answer(client, candidate, app, state, right, seq)
        assert ack.status_code == 200, ack.json
        state = state_of(client, candidate, state["id"])
    assert state["status"] == "finished"
    given = given_items(app, state["id"])
    assert len(given) == 6
    assert len({bank_ref for _, bank_ref, _, _ in given}) == 6
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=candidate).json
    params = [ItemParameters(ref, a, b) for _, ref, a, b in given]
    expected = estimate_ability([[float(r) for r in pattern]], params, "eap")
    assert result["theta"] == pytest.approx(expected.theta[0], abs=1e-9)
    assert result["total"] == min(100, max(0, int(np.floor(50 + 10 * expected.theta[0] + 0.5))))
    assert result["raw_points"] == 4
    assert result["raw_max"] == 6


def test_content_shares_are_followed(client, candidate, load_exam, app):
    """The items given follow the content targets: 40/30/30 of six is 2/2/2 by the
    furthest-below-target rule."""
    load_exam()
    state = start(client, candidate)
    for seq in range(1, 7):
        answer(client, candidate, app, state, seq % 2 == 0, seq)
        state = state_of(client, candidate, state["id"])
    refs = [bank_ref for _, bank_ref, _, _ in given_items(app, state["id"])]
    topics = [TOPICS[(int(ref.split("-")[1]) - 1) % 3] for ref in refs]
    assert topics == ["kanji", "vocabulary", "grammar", "kanji", "vocabulary", "grammar"]


def test_standard_error_stops_early(client, candidate, load_exam, app):
    """With an SE target the section ends before max_items once the SE is small enough."""
    load_exam(template(se_target=0.9, max_items=20, content=None, min_items=2))
    state = start(client, candidate)
    answered = 0
    while state["status"] == "in_progress":
        answered += 1
        assert answer(client, candidate, app, state, True, answered).status_code == 200
        state = state_of(client, candidate, state["id"])
    assert 2 <= answered < 20
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=candidate).json
    assert result["theta"] > 0  # all right


def test_right_answers_lead_to_harder_items(
    client, candidate, load_exam, app, make_candidate, auth_headers
):
    """After right answers the items get harder; after wrong ones, easier."""
    load_exam(template(exposure={"method": "none"}, content=None))
    last = {}
    for right, headers in ((True, candidate), (False, auth_headers(make_candidate()))):
        state = start(client, headers)
        for seq in range(1, 5):
            answer(client, headers, app, state, right, seq)
            state = state_of(client, headers, state["id"])
        difficulties = [b for _, _, _, b in given_items(app, state["id"])]
        last[right] = difficulties[-1]
        assert (difficulties[-1] > difficulties[0]) is right
    assert last[True] > last[False]


def test_sympson_hetter_lottery_keeps_an_item_back(
    client, candidate, load_exam, load_template, app
):
    """An item with a tiny exposure parameter is not given, however informative."""
    load_exam(template(exposure={"method": "none"}, content=None, max_items=3))
    state = start(client, candidate)
    best = given_items(app, state["id"])[0][1]
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate)
    controlled = template(
        exposure={"method": "sympson-hetter", "parameters": {best: 1e-9}},
        content=None,
        max_items=3,
    )
    load_template({**controlled, "version": 2})
    for _ in range(3):
        again = start(client, candidate)
        assert given_items(app, again["id"])[0][1] != best
        client.post(f"/api/v1/attempts/{again['id']}/finish", headers=candidate)


def test_start_refused_without_calibrated_items(client, candidate, load_exam):
    """A pool with fewer calibrated items than min_items cannot start the exam."""
    items = bank_items(5)
    for item in items:
        del item["difficulty"]
    load_exam(template(min_items=3), items=items)
    response = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=candidate)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "exam_unavailable"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"navigation": "free"}, "navigation sequential"),
        ({"sections": [{"code": "v", "title": {"en": "V"}, "adaptive": {"max_items": 5}}]}, "pool"),
        (
            {
                "sections": [
                    {
                        "code": "v",
                        "title": {"en": "V"},
                        "adaptive": {"pool": {"section": "v"}, "max_items": 0},
                    }
                ]
            },
            "max_items",
        ),
        (
            {
                "sections": [
                    {
                        "code": "v",
                        "title": {"en": "V"},
                        "select": {"section": "v", "count": 2},
                        "adaptive": {"pool": {"section": "v"}},
                    }
                ]
            },
            "takes no 'parts' or 'select'",
        ),
        (
            {
                "sections": [
                    {
                        "code": "v",
                        "title": {"en": "V"},
                        "adaptive": {"pool": {"colour": "v"}, "exposure": {"method": "x"}},
                    }
                ]
            },
            "exposure.method",
        ),
    ],
)
def test_bad_adaptive_templates_are_refused(change, problem):
    """An adaptive section's mistakes are reported with the template's other problems."""
    with pytest.raises(InvalidTemplate, match=problem):
        parse_blueprint({**TEMPLATE, **change})


def test_adaptive_blueprint_counts_and_scores():
    """A parsed adaptive section counts its maximum length and its scoring section."""
    blueprint = parse_blueprint(TEMPLATE)
    (section,) = blueprint.sections
    assert section.parts == ()
    assert section.adaptive.config.max_items == 6
    assert section.adaptive.config.randomesque_k == 2
    assert blueprint.item_count == 6
    assert blueprint.scoring_sections == ["vocabulary"]


# --------------------------------------------------------------------------- the player


@pytest.mark.browser
class TestPlayer:
    """The real exam page with an adaptive section, in headless Chromium."""

    @pytest.fixture
    def app_config(self):
        return {"WTF_CSRF_ENABLED": True}

    def test_next_question_comes_after_the_confirmed_answer(
        self,
        page,  # noqa: F811 - the fixture imported above
        live_server,  # noqa: F811
        make_candidate,
        load_exam,
    ):
        """Choosing does not send; Next sends, and the server's next question is shown."""
        from playwright.sync_api import expect  # by locator: the CSP refuses page eval

        load_exam()
        user = make_candidate()
        sign_in_and_start(page, live_server, user, EXAM)
        assert page.text_content("#question-number") == "Question 1 of 6"
        assert page.locator("#question-grid .cell").count() == 0
        assert page.is_disabled("#next") and page.is_disabled("#prev")
        for number in range(1, 7):
            stem = page.text_content("#stem")
            with page.expect_response(re.compile(r"/responses/")) as saved:
                page.locator("#answer-area .option").nth(0).click()
                page.click("#next")
            assert saved.value.ok
            if number < 6:
                expect(page.locator("#stem")).not_to_have_text(stem)
                expected = f"Question {number + 1} of 6"
                assert page.text_content("#question-number") == expected
                assert page.locator("#answer-area input:checked").count() == 0
        page.wait_for_url(re.compile(r"/attempts/\w+/result$"))
        assert re.search(r"\d+", page.text_content("#score"))
