"""Practice review: keys and explanations after finishing, only where the template allows."""

from __future__ import annotations

import copy

import pytest

from exam_templates.blueprint import parse_blueprint
from exam_templates.errors import InvalidTemplate

from .conftest import PASSWORD
from .test_attempts import items_of
from .test_exam_templates import SHIPPED
from .test_listening import listening  # noqa: F401 - fixture

TOUR = "item-types-tour"


@pytest.fixture
def tour(client, make_candidate, auth_headers, seeded):
    headers = auth_headers(make_candidate())
    state = client.post("/api/v1/attempts", json={"exam_code": TOUR}, headers=headers).json
    return headers, state


def test_review_after_finishing(client, tour):
    """After finishing, each item comes with the answer given, the key and the explanation."""
    headers, state = tour
    first = items_of(state)[0]
    client.put(
        f"/api/v1/attempts/{state['id']}/responses/{first['ref']}",
        json={"response": first["options"][0]["id"], "client_seq": 1},
        headers=headers,
    )
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    review = client.get(
        f"/api/v1/attempts/{state['id']}/review", headers={**headers, "Accept-Language": "ru"}
    ).json
    assert len(review["items"]) == 15
    reviewed = review["items"][0]
    assert reviewed["response"] == first["options"][0]["id"]
    assert reviewed["correct_answer"] in [o["id"] for o in first["options"]]
    assert reviewed["credit"] == (
        1.0 if reviewed["response"] == reviewed["correct_answer"] else 0.0
    )
    assert any("\u0400" <= ch <= "\u04ff" for ch in reviewed["explanation"])  # Russian text
    text_entry = next(i for i in review["items"] if i["type"] == "text_entry")
    assert text_entry["correct_answer"]["answers"]


def test_no_review_while_in_progress(client, tour):
    """During the attempt the review (with its keys) is refused."""
    headers, state = tour
    response = client.get(f"/api/v1/attempts/{state['id']}/review", headers=headers)
    assert response.status_code == 409
    assert client.get(f"/attempts/{state['id']}/review").status_code in (302, 409)


def test_no_review_without_template_permission(client, listening):  # noqa: F811
    """A template without ``review: true`` never shows keys, even after finishing."""
    headers, state = listening
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    response = client.get(f"/api/v1/attempts/{state['id']}/review", headers=headers)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "review_not_available"


def test_other_candidate_gets_no_review(client, tour, make_candidate, auth_headers):
    """Another candidate's review is a 404."""
    headers, state = tour
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    intruder = auth_headers(make_candidate())
    assert client.get(f"/api/v1/attempts/{state['id']}/review", headers=intruder).status_code == 404


def test_review_page(app, make_candidate, seeded):
    """The result page links to the review page, which shows keys and explanations."""
    user = make_candidate()
    client = app.test_client()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    start = client.post(f"/exams/{TOUR}/start")
    attempt_id = start.headers["Location"].rsplit("/", 1)[-1]
    client.post(f"/api/v1/attempts/{attempt_id}/finish")
    result = client.get(f"/attempts/{attempt_id}/result").get_data(as_text=True)
    assert f"/attempts/{attempt_id}/review" in result
    page = client.get(f"/attempts/{attempt_id}/review").get_data(as_text=True)
    assert page.count('class="review-item') == 15
    assert "correct answer" in page


def test_review_only_for_practice_only_templates():
    """A template that can be proctored may not offer a review."""
    document = {**copy.deepcopy(SHIPPED), "modes": ["practice", "proctored"], "review": True}
    with pytest.raises(InvalidTemplate, match="only practice-only templates"):
        parse_blueprint(document)


def test_review_summarises_what_to_study(client, tour):
    """The review adds points per section and topic, weakest first."""
    headers, state = tour
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    study = client.get(f"/api/v1/attempts/{state['id']}/review", headers=headers).json["study"]
    assert sum(row["items"] for row in study) == 15
    assert [row["percent"] for row in study] == sorted(row["percent"] for row in study)
    assert {"section", "topic", "points", "items", "percent"} == set(study[0])
