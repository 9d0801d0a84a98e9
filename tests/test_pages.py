"""The candidate's pages: catalogue, start, player, result; CSRF on the cookie API."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import PASSWORD
from .test_attempts import FORBIDDEN_KEYS, keys_by_ref


@pytest.fixture
def signed_in(client, make_candidate, seeded):
    user = make_candidate()
    assert (
        client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    )
    return user


def start_from_catalogue(client) -> str:
    response = client.post("/exams/jft-basic-practice/start")
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_catalogue_lists_practice_exam(client, signed_in):
    """The catalogue shows the practice exam with its size, time and pass mark."""
    page = client.get("/exams").get_data(as_text=True)
    assert "JFT-Basic style practice test (short)" in page
    assert "16 questions" in page and "20 minutes" in page
    assert "pass mark 200 on a scale of 10-250" in page


def test_player_page_renders_config_without_keys(client, signed_in, app):
    """The player page embeds its URLs and strings but no item content and no keys."""
    attempt_id = start_from_catalogue(client)
    page = client.get(f"/attempts/{attempt_id}").get_data(as_text=True)
    config = json.loads(re.search(r'id="player-config">(.*?)</script>', page, re.S).group(1))
    assert config["stateUrl"] == f"/api/v1/attempts/{attempt_id}"
    assert "%(n)s" in config["strings"]["question"]
    assert not FORBIDDEN_KEYS & set(config)
    assert keys_by_ref(app, attempt_id)


def test_cookie_api_needs_csrf_header(client, signed_in, app):
    """The page's cookie session may save only with the CSRF token of the page."""
    app.config["WTF_CSRF_ENABLED"] = True
    attempt_id = start_from_catalogue_with_csrf(client)
    state = client.get(f"/api/v1/attempts/{attempt_id}").json
    ref = state["sections"][0]["items"][0]["ref"]
    option = state["sections"][0]["items"][0]["options"][0]["id"]
    body = {"response": option, "client_seq": 1}
    refused = client.put(f"/api/v1/attempts/{attempt_id}/responses/{ref}", json=body)
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "csrf_failed"
    token = csrf_token_of(client.get(f"/attempts/{attempt_id}").get_data(as_text=True))
    accepted = client.put(
        f"/api/v1/attempts/{attempt_id}/responses/{ref}", json=body, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 200
    assert accepted.json["accepted"] is True


def csrf_token_of(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def start_from_catalogue_with_csrf(client) -> str:
    token = csrf_token_of(client.get("/exams").get_data(as_text=True))
    response = client.post("/exams/jft-basic-practice/start", data={"csrf_token": token})
    assert response.status_code == 302
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_forms_refuse_missing_csrf(client, signed_in, app):
    """A form post without the CSRF token is refused and starts nothing."""
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/exams/jft-basic-practice/start")
    assert response.status_code == 400
    assert client.get("/api/v1/attempts/x").status_code == 404


def test_result_page_after_finish(client, signed_in, app):
    """After finishing, the player redirects to a result page with score and verdict."""
    attempt_id = start_from_catalogue(client)
    keys = keys_by_ref(app, attempt_id)
    for seq, (ref, key) in enumerate(sorted(keys.items()), start=1):
        client.put(
            f"/api/v1/attempts/{attempt_id}/responses/{ref}",
            json={"response": key, "client_seq": seq},
        )
    client.post(f"/api/v1/attempts/{attempt_id}/finish")
    player = client.get(f"/attempts/{attempt_id}")
    assert player.status_code == 302
    page = client.get(player.headers["Location"]).get_data(as_text=True)
    assert "Your score: 250 (scale 10-250)" in page
    assert "Level: A2.2" in page
    assert "Passed" in page
    assert "this is not a certificate" in page


def test_other_candidates_attempt_page_is_404(client, signed_in, make_candidate, app):
    """Another candidate's player and result pages answer 404."""
    attempt_id = start_from_catalogue(client)
    other = make_candidate()
    client.post("/logout")
    client.post("/login", data={"email": other.email, "password": PASSWORD})
    assert client.get(f"/attempts/{attempt_id}").status_code == 404
    assert client.get(f"/attempts/{attempt_id}/result").status_code == 404


@pytest.mark.parametrize(
    ("lang", "text"), [("ru", "Войти"), ("uz", "Kirish"), ("ja", "ログイン"), ("en", "Sign in")]
)
def test_language_switch(client, lang, text):
    """Choosing a language shows the sign-in page in it."""
    client.post(f"/language/{lang}", data={"next": "/login"})
    assert text in client.get("/login").get_data(as_text=True)


def test_browser_language_is_the_default(client):
    """Without a choice, the browser's Accept-Language picks the language."""
    page = client.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    assert "Войти" in page.get_data(as_text=True)


def test_pages_send_security_headers(client):
    """Pages forbid framing, sniffing and scripts from anywhere but this site."""
    headers = client.get("/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
