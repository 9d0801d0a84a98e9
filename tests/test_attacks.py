"""Attacks: what a candidate, another centre's staff, a stranger or a forged upload
try, and what the application must refuse.

Answer keys and scoring data never reach a candidate; no id in any path opens another
user's record; every state-changing form and cookie-API call needs the CSRF token; the
session cookie and the security headers are set; replayed and forged saves are refused;
hostile packages and media are refused with a clear error and nothing written; the audit
log cannot be changed through the application.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import itertools
import json
import math
import re
import struct
import wave
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.db import Base
from item_bank.models import Item, Media
from item_bank.services import import_bundles
from testing_center.accounts.models import Role
from testing_center.attempts.models import Response
from testing_center.extensions import db
from testing_center.operations.models import (
    AuditEntry,
    CandidatePhoto,
    ExamSession,
)
from testing_center.operations.scheduler import run_cycle

from .conftest import PASSWORD, START, settings_for
from .operations_setup import EXAM, NEXT_WEEK, other_centre_operator, schedule

BORN = dt.date(1996, 3, 9)
CHECK_IN = NEXT_WEEK - dt.timedelta(minutes=30)
BOOKING_DAY = START + dt.timedelta(days=1)


# ---- seating candidates -------------------------------------------------------------------


def id_number(app, user_id: int) -> str:
    from testing_center.accounts.models import CandidateProfile

    with app.app_context():
        return db.session.get(CandidateProfile, user_id).id_document_number


def seat(
    app, client, clock, world, make_candidate, auth_headers, session_id: int, photo: bool = False
):
    """Book a candidate into the session, check them in (with a photo taken, if asked);
    return (account, headers, booking id)."""
    clock.current = BOOKING_DAY
    candidate = make_candidate(date_of_birth=BORN)
    headers = auth_headers(candidate)
    booking = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers)
    assert booking.status_code == 201, booking.json
    clock.current = CHECK_IN
    admitted = client.post(
        f"/api/v1/bookings/{booking.json['booking_id']}/check-in",
        json={
            "id_document_number": id_number(app, candidate.id),
            **({"photo": base64.b64encode(png(300, 400)).decode()} if photo else {}),
        },
        headers=world["headers"]["proctor"],
    )
    assert admitted.status_code == 200, admitted.json
    return candidate, headers, booking.json["booking_id"]


def open_and_start(client, clock, world, session_id: int, seated: list[tuple]) -> list[dict]:
    """Open the session at its start; each seated candidate starts; return their states."""
    clock.current = NEXT_WEEK
    opened = client.post(f"/api/v1/sessions/{session_id}/open", headers=world["headers"]["proctor"])
    assert opened.status_code == 200, opened.json
    states = []
    for _, headers, booking_id in seated:
        state = client.post("/api/v1/attempts", json={"booking_id": booking_id}, headers=headers)
        assert state.status_code == 201, state.json
        states.append(state.json)
    return states


def items_of(state: dict) -> list[dict]:
    return [item for section in state["sections"] for item in section["items"]]


def release(app, clock, session_id: int) -> None:
    """Close the session, release its results, and run the scheduler (certificates)."""
    with app.app_context():
        exam_session = db.session.get(ExamSession, session_id)
        exam_session.status = "closed"
        exam_session.results_release_at = clock()
        db.session.commit()
        run_cycle(db.session, clock)


# ---- 1. answer keys and scoring data never reach a candidate --------------------------------

LEAK_EXAM = "leak-exam"
SECRET_ANSWER = "ひみつのこたえ"
SECRET_EXPLANATION = "EXPLAIN-SECRET"
SECRET_A, SECRET_B = 1.2345, -0.6789
HIDDEN_REF = "hidden-ref"


def tone_wav(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of a 440 Hz tone (loud enough not to count as silence)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = (
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
            for n in range(int(seconds * rate))
        )
        out.writeframes(b"".join(frames))
    return buffer.getvalue()


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def leak_bundle() -> Bundle:
    """Text-entry items with recognisable keys, explanations, IRT parameters and refs; a
    picture in a stem and a conversation with a recording."""
    items = [
        {
            "ref": f"{HIDDEN_REF}-{n}",
            "type": "text_entry",
            "exam_family": "leak",
            "level": "A2",
            "section": "all",
            "topic": "work",
            "stem": f'<p>問題 {n}</p><p><img src="media/picture.png" alt="絵"></p>',
            "max_length": 20,
            "key": {"answers": [{"value": f"{SECRET_ANSWER}{n}", "credit": 1.0}]},
            "explanation": {"en": f"{SECRET_EXPLANATION}-{n}"},
            "difficulty": {
                "p": 0.4321,
                "irt": {"model": "2pl", "a": SECRET_A, "b": SECRET_B, "c": 0.0, "scale": "theta"},
            },
            **({"stimulus": f"{HIDDEN_REF}-conversation"} if n == 0 else {}),
        }
        for n in range(3)
    ]
    stimuli = [
        {
            "ref": f"{HIDDEN_REF}-conversation",
            "kind": "conversation",
            "html": "<p>会話を聞いてください。</p>",
            "audio": "media/talk.wav",
            "play_limit": 2,
        }
    ]
    media = {"media/picture.png": png(40, 30), "media/talk.wav": tone_wav(1.0)}
    return Bundle(items=items, stimuli=stimuli, media=media, origin="attack-test")


LEAK_TEMPLATE = {
    "code": LEAK_EXAM,
    "version": 1,
    "title": {"en": "Leak check"},
    "modes": ["practice", "proctored"],
    "clock": {"kind": "shared", "duration_seconds": 1800},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "leak", "section": "all", "count": 3},
        }
    ],
    "scoring": {
        "rule": "irt",
        "scale": {"min": 10, "max": 250},
        "theta_to_scale": {"slope": 40, "intercept": 150},
        "pass_mark": 200,
    },
}

# what a candidate-facing answer may never contain: JSON keys, and values
FORBIDDEN_KEYS = re.compile(
    r"(&#34;|&quot;|\")(answer_key|key|irt|explanation|difficulty|details|correct_answer)"
    r"(&#34;|&quot;|\")\s*:"
)
FORBIDDEN_VALUES = (SECRET_ANSWER, SECRET_EXPLANATION, str(SECRET_A), str(SECRET_B), "0.4321")


def leaks_in(text: str) -> list[str]:
    """The forbidden names and values found in a response text."""
    found = [value for value in FORBIDDEN_VALUES if value in text]
    found += [match.group(2) for match in FORBIDDEN_KEYS.finditer(text)]
    if HIDDEN_REF in text:
        found.append("a bank ref")
    if re.search(r"item_version|version_id", text):
        found.append("an item version id")
    return found


@pytest.fixture
def leak_exam(app, clock, world):
    with app.app_context():
        import_bundles(db.session, [leak_bundle()], status="approved", now=clock())
        load_templates(db.session, [LEAK_TEMPLATE], now=clock())
        db.session.commit()


def candidate_browser(app, email: str):
    """A cookie session signed in through the login form (CSRF off, as in most tests)."""
    browser = app.test_client()
    signed_in = browser.post("/login", data={"email": email, "password": PASSWORD})
    assert signed_in.status_code in (302, 303), signed_in.text
    return browser


def test_a_running_exam_shows_no_key_scoring_data_or_bank_ref(
    app, client, clock, world, leak_exam, make_candidate, auth_headers
):
    """Nothing a candidate receives during a proctored exam and before its release holds
    a key, an explanation, item parameters, theta, a bank ref or a version id."""
    created = schedule(client, world, NEXT_WEEK, exam_code=LEAK_EXAM)
    seated = [
        seat(app, client, clock, world, make_candidate, auth_headers, created["id"])
        for _ in range(1)
    ]
    (state,) = open_and_start(client, clock, world, created["id"], seated)
    candidate, headers, _ = seated[0]
    attempt = state["id"]
    browser = candidate_browser(app, candidate.email)
    seen: dict[str, str] = {"start": json.dumps(state, ensure_ascii=False)}

    def api(method: str, path: str, **kwargs) -> Any:
        response = client.open(path, method=method, headers=headers, **kwargs)
        seen[f"{method} {path}"] = response.get_data(as_text=True) + str(response.headers)
        return response

    api("GET", f"/api/v1/attempts/{attempt}")
    for n, item in enumerate(items_of(state)):
        ack = api(
            "PUT",
            f"/api/v1/attempts/{attempt}/responses/{item['ref']}",
            json={"response": f"{SECRET_ANSWER}{n}", "client_seq": 1},
        )
        assert ack.status_code == 200 and ack.json["accepted"]
        seen[f"ack {n}"] = seen.pop(f"PUT /api/v1/attempts/{attempt}/responses/{item['ref']}")
        seen[f"ack {n}"] = seen[f"ack {n}"].replace(f"{SECRET_ANSWER}{n}", "<own answer>")
    grant = api("POST", f"/api/v1/attempts/{attempt}/audio/s1/plays")
    assert grant.status_code == 200, grant.json
    recording = client.get(grant.json["url"], headers=headers)
    assert recording.status_code == 200 and recording.mimetype == "audio/mpeg"
    seen["recording headers"] = str(recording.headers)
    for path in ("/api/v1/exams", "/api/v1/bookings", f"/api/v1/attempts/{attempt}/review"):
        api("GET", path)
    pages = {path: browser.get(path) for path in ("/exams", "/bookings", "/results")}
    pages["player"] = browser.get(f"/attempts/{attempt}")
    assert pages["player"].status_code == 200
    finished = api("POST", f"/api/v1/attempts/{attempt}/finish")
    assert finished.status_code == 200 and finished.json["released"] is False
    api("GET", f"/api/v1/attempts/{attempt}/result")
    pages["result page"] = browser.get(f"/attempts/{attempt}/result", follow_redirects=True)
    pages["results after finish"] = browser.get("/results")
    for name, page in pages.items():
        seen[f"page {name}"] = page.get_data(as_text=True)
    found = {name: leaks_in(text) for name, text in seen.items() if leaks_in(text)}
    assert found == {}
    result = client.get(f"/api/v1/attempts/{attempt}/result", headers=headers).json
    hidden = ("theta", "conditional_sem", "total", "passed", "item_parameters", "scoring_version")
    assert all(result[name] is None for name in hidden) and result["sections"] == []
    picture = re.search(r"/media/([0-9a-f]{64})", seen[f"GET /api/v1/attempts/{attempt}"])
    assert picture, "the stem's picture is addressed by its content hash only"


def test_the_result_shows_scores_only_after_release(
    app, client, clock, world, leak_exam, make_candidate, auth_headers
):
    """Theta and the scaled score appear once the centre releases the results, not before."""
    created = schedule(client, world, NEXT_WEEK, exam_code=LEAK_EXAM)
    seated = [seat(app, client, clock, world, make_candidate, auth_headers, created["id"])]
    (state,) = open_and_start(client, clock, world, created["id"], seated)
    _, headers, _ = seated[0]
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    before = client.get(f"/api/v1/attempts/{state['id']}/result", headers=headers).json
    assert before["theta"] is None and before["total"] is None
    release(app, clock, created["id"])
    after = client.get(f"/api/v1/attempts/{state['id']}/result", headers=headers).json
    assert after["released"] and after["theta"] is not None and after["total"] is not None


def test_stored_audio_is_not_served_to_candidates_by_its_hash(
    app, client, clock, world, leak_exam, make_candidate, auth_headers
):
    """A recording cannot be fetched by its media hash (which would bypass the play limit)."""
    with app.app_context():
        audio = db.session.scalar(select(Media.sha256).where(Media.kind == "audio"))
        picture = db.session.scalar(select(Media.sha256).where(Media.kind == "image"))
    candidate = make_candidate()
    browser = candidate_browser(app, candidate.email)
    assert browser.get(f"/media/{audio}").status_code == 404
    assert client.get(f"/media/{audio}").status_code == 404
    assert browser.get(f"/media/{picture}").status_code == 200


# ---- 2. no access across users -------------------------------------------------------------


@pytest.fixture
def victims(app, client, clock, world, make_candidate, make_staff, auth_headers):
    """Records of two candidates of the Tashkent centre and of an employer, and the people
    who try to reach them: another candidate, an operator of the Samarkand centre, a
    proctor not assigned to the session, another employer, and an anonymous client."""
    created = schedule(client, world, NEXT_WEEK)
    session_id = created["id"]
    seated = [
        seat(app, client, clock, world, make_candidate, auth_headers, session_id) for _ in range(2)
    ]
    finished_state, running_state = open_and_start(client, clock, world, session_id, seated)
    (owner, owner_headers, booking), (_, _, running_booking) = seated
    for item in items_of(finished_state):
        client.put(
            f"/api/v1/attempts/{finished_state['id']}/responses/{item['ref']}",
            json={"response": "A", "client_seq": 1},
            headers=owner_headers,
        )
    client.post(f"/api/v1/attempts/{finished_state['id']}/finish", headers=owner_headers)
    extension = client.post(
        f"/api/v1/attempts/{running_state['id']}/extend",
        json={"seconds": 300, "reason": "the fire alarm"},
        headers=world["headers"]["proctor"],
    )
    assert extension.status_code == 200 and not extension.json["approved"], extension.json
    release(app, clock, session_id)
    practice = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=owner_headers)
    assert practice.status_code == 201, practice.json
    number = client.get(
        f"/api/v1/attempts/{finished_state['id']}/result", headers=owner_headers
    ).json["certificate_number"]
    assert number
    shared = client.post(
        f"/api/v1/certificates/{number}/share", json={"days": 5}, headers=owner_headers
    )
    assert shared.status_code == 201, shared.json
    employer = make_staff(Role.EMPLOYER)
    batch = client.post(
        "/api/v1/employer/verifications",
        json={"items": [{"number": number, "date_of_birth": BORN.isoformat()}]},
        headers=auth_headers(employer),
    )
    assert batch.status_code == 201, batch.json
    clock.current = NEXT_WEEK + dt.timedelta(minutes=5)
    elsewhere = other_centre_operator(app, client, world, make_staff)
    with app.app_context():
        photos = db.session.scalars(
            select(CandidatePhoto.id).where(CandidatePhoto.user_id == owner.id)
        ).all()
    attackers = {
        "another candidate": make_candidate(),
        "an operator of another centre": elsewhere,
        "an unassigned proctor": make_staff(Role.PROCTOR),
        "another employer": make_staff(Role.EMPLOYER),
    }
    return {
        "values": {
            "attempt_id": [finished_state["id"], running_state["id"], practice.json["id"]],
            "booking_id": [booking, running_booking],
            "session_id": [session_id],
            "extension_id": [extension.json["id"]],
            "number": [number],
            "token": [shared.json["url"].rstrip("/").rsplit("/", 1)[-1]],
            "batch": [batch.json["batch"]],
            "item_ref": ["q1"],
            "source": ["q1"],
            "section_code": ["all"],
            "ref": ["ops-0"],
            "action": ["approve"],
            "step": ["pause", "resume"],
            "kind": ["icc"],
            "set_id": [1],
            "sha256": ["0" * 64],
            "photo_id": photos,
        },
        "owner": owner,
        "attackers": attackers,
        "session_id": session_id,
    }


# Routes whose ids anyone may use, by design (each checked by its own tests):
PUBLIC = {
    "static",
    "media.media",  # pictures by content hash; recordings only for staff (test above)
    "verify.shared",  # a holder's share link: whoever has it may see the status
    "certificates.verify_certificate",  # number AND date of birth (test below)
    "certificates.certificate_photo",  # the same
    "account.set_language",  # a language code, not a record
}
# Routes any candidate may use with any id, by design: booking a published session,
# starting a practice test of the catalogue.
ANY_CANDIDATE = {"operations.book", "bookings.book", "candidate.start"}
# Exam-level pages that every operator sees, whatever their centre.
EXAM_LEVEL_STAFF = "psychometrics."
CODE_VALUES = {
    "operations.add_room": "TAS",
    "operator.add_room": "TAS",
    "account.set_language": "ja",
}
FORM_DATA = {"reason": "a try", "minutes": "5", "seconds": "300", "category": "other"}
JSON_BODIES = {
    "attempts.put_response": {"response": "B", "client_seq": 99},
    "operations.pause": {"reason": "a try"},
    "operations.resume": {"reason": "a try"},
    "operations.void": {"reason": "a try"},
    "operations.extend": {"seconds": 60, "reason": "a try"},
    "operations.reschedule": {"session_id": 1},
    "operations.check_in": {"id_document_number": "AA0000001"},
    "operations.cancel_session": {"reason": "a try"},
    "operations.move_session": {"starts_at": "2026-12-20T09:00:00+00:00", "reason": "a try"},
    "operations.assign_proctor": {"email": "someone@example.test"},
    "operations.hold_seat": {"email": "someone@example.test", "minutes": 30},
    "operations.record_incident": {"category": "other", "text": "a try"},
    "operations.pause_room": {"reason": "a try"},
    "operations.resume_room": {"reason": "a try"},
    "operations.add_room": {"name": "Z", "seats": 5},
    "certificates.revoke": {"category": "misconduct", "reason": "a try"},
    "certificates.share": {"days": 3},
}


def id_routes(app) -> list:
    """Every route with a variable in its path, with its state-changing methods and GET."""
    return sorted(
        (rule for rule in app.url_map.iter_rules() if rule.arguments),
        key=lambda rule: rule.rule,
    )


def urls_for(app, rule, values: dict[str, list]) -> Iterator[str]:
    """The rule's URLs with the victims' ids (every combination)."""
    choices = []
    for name in sorted(rule.arguments):
        if name == "code":
            code = CODE_VALUES.get(rule.endpoint, EXAM)
            choices.append([(name, code)])
            continue
        assert name in values, f"{rule.rule}: classify the path variable <{name}> here"
        choices.append([(name, value) for value in values[name]])
    with app.test_request_context():
        from flask import url_for

        for combination in itertools.product(*choices):
            yield url_for(rule.endpoint, **dict(combination))


def refused(path: str, response, victim_ids: set[str]) -> bool:
    """Refused without data: 401/403/404; pages may instead redirect (to the sign-in
    page, or back to the person's own pages with an error), never to the victim's record.
    That a redirect changed nothing is checked on the whole database afterwards."""
    if response.status_code in (401, 403, 404):
        return True
    target = urlsplit(response.headers.get("Location", "")).path
    return (
        not path.startswith("/api/")
        and response.status_code in (302, 303)
        and (target == "/login" or not any(victim in target for victim in victim_ids))
    )


def database_contents(app) -> dict[str, list]:
    """Every row of every table (small test databases), to prove nothing changed."""
    with app.app_context():
        return {
            table.name: sorted(map(repr, db.session.execute(select(table)).all()))
            for table in Base.metadata.sorted_tables
        }


def requests_for(app, rule, values) -> Iterator[tuple[str, str, dict]]:
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        for url in urls_for(app, rule, values):
            # withdrawals name the victim's live share link, as an attacker would
            victim_link = {"token": values["token"][0]}
            if url.startswith("/api/"):
                body = JSON_BODIES.get(rule.endpoint)
                if rule.endpoint == "certificates.withdraw_share":
                    body = victim_link
                kwargs = {"json": body} if method != "GET" and body is not None else {}
            else:
                kwargs = {"data": {**FORM_DATA, **victim_link}} if method != "GET" else {}
            yield method, url, kwargs


@pytest.mark.parametrize(
    "attacker",
    [
        "another candidate",
        "an operator of another centre",
        "an unassigned proctor",
        "another employer",
        "an anonymous client",
    ],
)
def test_no_id_in_any_path_opens_another_users_record(app, auth_headers, victims, attacker):
    """Every route with an id answers 401/403/404 (never data) to anyone it does not
    belong to, API and pages alike; only routes public or self-service by design differ."""
    account = victims["attackers"].get(attacker)
    headers = auth_headers(account) if account else {}
    browser = candidate_browser(app, account.email) if account else app.test_client()
    api = app.test_client()
    victim_ids = {
        str(value)
        for name in ("attempt_id", "number", "token", "batch")
        for value in victims["values"][name]
    }
    before = database_contents(app)
    let_through = []
    for rule in id_routes(app):
        if rule.endpoint in PUBLIC:
            continue
        if attacker == "another candidate" and rule.endpoint in ANY_CANDIDATE:
            continue
        if attacker == "an operator of another centre" and rule.endpoint.startswith(
            EXAM_LEVEL_STAFF
        ):
            continue
        for method, url, kwargs in requests_for(app, rule, victims["values"]):
            if url.startswith("/api/"):
                response = api.open(url, method=method, headers=headers, **kwargs)
            else:
                response = browser.open(url, method=method, **kwargs)
            if not refused(url, response, victim_ids):
                let_through.append((method, url, response.status_code))
    assert let_through == []
    after = database_contents(app)
    assert [name for name in before if before[name] != after[name]] == []


def test_the_id_table_covers_every_route_with_an_id(app, victims):
    """Every path variable of the application is classified (a new route must be too)."""
    for rule in id_routes(app):
        if rule.endpoint != "static":
            list(urls_for(app, rule, victims["values"]))


def test_public_certificate_lookup_needs_the_date_of_birth(client, victims):
    """The public lookup by number answers nothing without the holder's date of birth."""
    (number,) = victims["values"]["number"]
    for suffix in ("", "?date_of_birth=2000-01-01", "?date_of_birth=not-a-date"):
        for what in ("", "/photo"):
            response = client.get(f"/api/v1/certificates/{number}{what}{suffix}")
            assert response.status_code in (404, 422)
            assert "full_name" not in response.get_data(as_text=True)


# ---- 3. CSRF, cookies, headers ---------------------------------------------------------------

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC_WRITES = {"auth.register", "auth.token"}  # no session: nothing to ride on


def row_counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


def every_url(app, rule, values: dict[str, list]) -> str:
    return next(urls_for(app, rule, values)) if rule.arguments else rule.rule


def test_every_state_changing_form_and_cookie_api_call_needs_the_csrf_token(
    app, victims, make_staff
):
    """With CSRF on, no POST/PUT/PATCH/DELETE made with a signed-in cookie session and no
    token does anything: forms answer 400, the API 403 ``csrf_failed``."""
    app.config["WTF_CSRF_ENABLED"] = True
    people = [victims["owner"], make_staff(Role.OPERATOR), make_staff(Role.ADMIN)]
    browsers = []
    for person in people:
        app.config["WTF_CSRF_ENABLED"] = False  # sign in (the login form has its own test)
        browsers.append(candidate_browser(app, person.email))
        app.config["WTF_CSRF_ENABLED"] = True
    before = row_counts(app)
    accepted = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_WRITES or not rule.methods & UNSAFE:
            continue
        url = every_url(app, rule, victims["values"])
        for method in sorted(rule.methods & UNSAFE):
            for browser in browsers:
                if url.startswith("/api/"):
                    response = browser.open(url, method=method, json=JSON_BODIES.get(rule.endpoint))
                    ok = (
                        response.status_code == 403
                        and response.json["error"]["code"] == "csrf_failed"
                    )
                else:
                    response = browser.open(url, method=method, data=dict(FORM_DATA))
                    ok = response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
                if not ok:
                    accepted.append((method, url, response.status_code))
    assert accepted == []
    assert row_counts(app) == before


def test_login_form_needs_the_csrf_token(app, client, make_candidate):
    """Signing in through the form without its token is refused (no login CSRF)."""
    app.config["WTF_CSRF_ENABLED"] = True
    candidate = make_candidate()
    response = client.post("/login", data={"email": candidate.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/exams").status_code == 302


def session_cookie_of(response) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie") if "session=" in value]
    assert cookies, "the login sets the session cookie"
    return cookies[-1]


def test_session_cookie_is_http_only_and_same_site(app, client, make_candidate):
    """The session cookie cannot be read by scripts nor sent by other sites' forms."""
    candidate = make_candidate()
    cookie = session_cookie_of(
        client.post("/login", data={"email": candidate.email, "password": PASSWORD})
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_session_cookie_is_secure(database_url, clock, make_candidate):
    """In production the session cookie travels over HTTPS only."""
    from testing_center import create_app

    production = create_app(settings_for(database_url, ENV_NAME="production", CLOCK=clock))
    assert production.config["SESSION_COOKIE_SECURE"] is True
    candidate = make_candidate()
    cookie = session_cookie_of(
        production.test_client().post(
            "/login", data={"email": candidate.email, "password": PASSWORD}
        )
    )
    assert "Secure" in cookie and "HttpOnly" in cookie
    with production.app_context():
        db.engine.dispose()


def test_production_answers_demand_https(database_url, clock):
    """In production every answer, page, API or error, carries HSTS for a year with
    subdomains; HSTS_SECONDS=0 turns it off."""
    from testing_center import create_app

    production = create_app(settings_for(database_url, ENV_NAME="production", CLOCK=clock))
    client = production.test_client()
    for url in ("/", "/api/v1/exams", "/no-such-page", "/static/js/player.js"):
        response = client.get(url)
        assert response.headers.get("Strict-Transport-Security") == (
            "max-age=31536000; includeSubDomains"
        ), url
        response.close()
    silent = create_app(
        settings_for(database_url, ENV_NAME="production", CLOCK=clock, HSTS_SECONDS=0)
    )
    assert "Strict-Transport-Security" not in silent.test_client().get("/").headers
    for application in (production, silent):
        with application.app_context():
            db.engine.dispose()


def test_development_does_not_pin_https(client):
    """Development serves plain HTTP, so it never sends HSTS (a browser would then refuse
    http://127.0.0.1 for a year)."""
    assert "Strict-Transport-Security" not in client.get("/").headers


def assert_security_headers(response) -> None:
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert re.search(r"script-src 'self'(;|$)", csp), csp  # no inline or eval
    assert re.search(r"style-src 'self'(;|$)", csp), csp
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy")


def test_security_headers_on_every_page_and_api_answer(app, client, victims):
    """Every answer, page or API, success or error, carries CSP, frame denial, nosniff."""
    owner = candidate_browser(app, victims["owner"].email)
    (attempt, *_) = victims["values"]["attempt_id"]
    answers = [client.get(rule.rule) for rule in app.url_map.iter_rules() if not rule.arguments]
    answers += [owner.get(rule.rule) for rule in app.url_map.iter_rules() if not rule.arguments]
    answers += [
        owner.get(f"/attempts/{attempt}/result"),
        client.get("/api/v1/attempts/nope"),
        client.get("/no-such-page"),
        client.get("/static/js/player.js"),
    ]
    for response in answers:
        assert_security_headers(response)
        response.close()


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")


def test_the_player_page_runs_under_the_policy(app, client, victims):
    """The exam page has no inline script, style or event handler, so the strict CSP
    (scripts and styles from our origin only) leaves it working."""
    owner = candidate_browser(app, victims["owner"].email)
    practice = victims["values"]["attempt_id"][2]
    page = owner.get(f"/attempts/{practice}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not INLINE_SCRIPT.search(html)
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html)
    assert_security_headers(page)


# ---- 4. replays and forged saves -------------------------------------------------------------


@pytest.fixture
def sitting(app, client, clock, world, make_candidate, auth_headers):
    """Three candidates in an open session, each with their first answer saved."""
    created = schedule(client, world, NEXT_WEEK)
    seated = [
        seat(app, client, clock, world, make_candidate, auth_headers, created["id"])
        for _ in range(3)
    ]
    states = open_and_start(client, clock, world, created["id"], seated)
    for (_, headers, _), state in zip(seated, states, strict=True):
        saved = client.put(
            f"/api/v1/attempts/{state['id']}/responses/q1",
            json={"response": "A", "client_seq": 5},
            headers=headers,
        )
        assert saved.status_code == 200 and saved.json["accepted"]
    return [(headers, state["id"]) for (_, headers, _), state in zip(seated, states, strict=True)]


def stored_responses(app) -> list[tuple]:
    with app.app_context():
        return db.session.execute(
            select(Response.id, Response.value, Response.client_seq, Response.saved_at).order_by(
                Response.id
            )
        ).all()


def put(client, headers, attempt_id, ref, value="B", seq=10):
    return client.put(
        f"/api/v1/attempts/{attempt_id}/responses/{ref}",
        json={"response": value, "client_seq": seq},
        headers=headers,
    )


def test_saves_to_a_finished_attempt_are_refused(app, client, sitting):
    """After the finish, no save, however new its client_seq, changes a stored answer."""
    headers, attempt = sitting[0]
    client.post(f"/api/v1/attempts/{attempt}/finish", headers=headers)
    before = stored_responses(app)
    for ref, seq in (("q1", 6), ("q2", 1), ("q1", 10**9)):
        refused_save = put(client, headers, attempt, ref, seq=seq)
        assert refused_save.status_code == 409
        assert refused_save.json["error"]["code"] == "attempt_closed"
    assert stored_responses(app) == before


def test_saves_to_a_voided_attempt_are_refused(app, client, world, sitting):
    """A voided attempt takes no more answers."""
    headers, attempt = sitting[1]
    voided = client.post(
        f"/api/v1/attempts/{attempt}/void",
        json={"reason": "notes on the desk"},
        headers=world["headers"]["proctor"],
    )
    assert voided.status_code == 200 and voided.json["status"] == "voided"
    before = stored_responses(app)
    refused_save = put(client, headers, attempt, "q1", seq=6)
    assert (
        refused_save.status_code == 409 and refused_save.json["error"]["code"] == "attempt_closed"
    )
    assert stored_responses(app) == before


def test_saves_into_another_candidates_attempt_are_refused(app, client, sitting):
    """A candidate cannot write into another's attempt, even with its real item refs."""
    (mine, _), (_, theirs), _ = sitting
    before = stored_responses(app)
    for ref in ("q1", "q2"):
        response = put(client, mine, theirs, ref, seq=99)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "attempt_not_found"
    assert stored_responses(app) == before


FORGED_REFS = [
    "q0",
    "q999",
    "ops-0",  # a bank ref
    "1",  # a row id
    "Q1",
    "q1 ",
    "q1%00",
    "q1;DROP TABLE responses",
    "q１",  # a full-width digit
    "%2e%2e%2fq1",
    "x" * 300,
]


@pytest.mark.parametrize("ref", FORGED_REFS)
def test_forged_item_refs_are_refused(app, client, sitting, ref):
    """A ref the attempt does not have is refused and stores nothing."""
    headers, attempt = sitting[0]
    before = stored_responses(app)
    response = put(client, headers, attempt, ref, seq=99)
    assert response.status_code in (400, 404)
    assert response.is_json and "error" in response.json
    assert stored_responses(app) == before


def test_a_replayed_older_save_never_overwrites_a_newer_one(app, client, sitting):
    """Saves with a lower or equal client_seq (a late retry, a replay) change nothing."""
    headers, attempt = sitting[0]
    before = stored_responses(app)
    for seq, value in ((4, "B"), (5, "C"), (0, "B"), (-1, "C")):
        response = put(client, headers, attempt, "q1", value=value, seq=seq)
        if response.status_code == 200:
            assert response.json["accepted"] is False and response.json["response"] == "A"
            assert response.json["client_seq"] == 5
        else:
            assert response.status_code == 422
    assert stored_responses(app) == before


def test_a_forged_client_time_or_extra_field_changes_nothing(app, client, sitting):
    """Fields the save does not define (a client time, a status, a score) are refused."""
    headers, attempt = sitting[0]
    before = stored_responses(app)
    for extra in ({"saved_at": "2020-01-01T00:00:00Z"}, {"credit": 1}, {"status": "finished"}):
        response = client.put(
            f"/api/v1/attempts/{attempt}/responses/q2",
            json={"response": "B", "client_seq": 50, **extra},
            headers=headers,
        )
        assert response.status_code == 422
    assert stored_responses(app) == before


# ---- 5. hostile uploads ----------------------------------------------------------------------


def nothing_imported(app) -> bool:
    with app.app_context():
        items = db.session.scalar(select(func.count()).select_from(Item))
        media = db.session.scalar(select(func.count()).select_from(Media))
    return items == 0 and media == 0


QTI_ITEM = """<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
  identifier="evil-1" title="evil" adaptive="false" time-dependent="false">
  <qti-response-declaration identifier="RESPONSE" cardinality="single" base-type="identifier">
    <qti-correct-response><qti-value>A</qti-value></qti-correct-response>
  </qti-response-declaration>
  <qti-item-body>
    <qti-choice-interaction response-identifier="RESPONSE" max-choices="1">
      <qti-simple-choice identifier="A">a</qti-simple-choice>
      <qti-simple-choice identifier="B">b</qti-simple-choice>
      <qti-simple-choice identifier="C">c</qti-simple-choice>
    </qti-choice-interaction>
  </qti-item-body>
</qti-assessment-item>
"""
MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1" identifier="m">
  <resources>
    <resource identifier="evil-1" type="imsqti_item_xmlv3p0" href="items/evil-1.xml">
      <file href="items/evil-1.xml"/>
    </resource>
  </resources>
</manifest>
"""


def package(path: Path, extra: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("imsmanifest.xml", MANIFEST)
        archive.writestr("items/evil-1.xml", QTI_ITEM)
        for name, data in extra.items():
            archive.writestr(name, data)
    return path


def test_a_package_with_paths_out_of_its_folder_is_refused(app, runner, tmp_path):
    """Zip entries named ../ or absolute are refused; no file lands outside, no item in."""
    upload = tmp_path / "upload"
    upload.mkdir()
    evil = package(
        upload / "evil.zip",
        {"../escaped.txt": b"owned", "/etc/escaped-too.txt": b"owned", "../../x.png": png(2, 2)},
    )
    result = runner.invoke(args=["items", "import", str(evil)])
    assert result.exit_code != 0
    assert "zip slip" in result.output and "absolute path refused" in result.output
    assert not (tmp_path / "escaped.txt").exists() and not Path("/etc/escaped-too.txt").exists()
    assert nothing_imported(app)


def test_a_zip_bomb_is_refused_before_it_is_inflated(app, runner, tmp_path):
    """An entry that inflates far beyond its compressed size is refused unread."""
    bomb = package(tmp_path / "bomb.zip", {"media/zeros.png": b"\0" * (30 * 1024 * 1024)})
    assert bomb.stat().st_size < 200 * 1024  # 30 MB of zeros in a small file
    result = runner.invoke(args=["items", "import", str(bomb)])
    assert result.exit_code != 0 and "zip bomb" in result.output
    assert nothing_imported(app)


def decompression_bomb_png(side: int) -> bytes:
    """A tiny PNG whose header claims side x side pixels (1-bit grey)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    row = b"\0" + b"\0" * ((side + 7) // 8)
    pixels = zlib.compress(row * side, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def author_upload(app, make_staff, filename: str, data: bytes, field: str):
    author = make_staff(Role.AUTHOR)
    browser = candidate_browser(app, author.email)
    media_line = {
        "image": f'stem: "<p>絵</p><p><img src=\\"media/{filename}\\"></p>"',
        "audio": f'stem: "<p>聞いてください</p>"\naudio: media/{filename}',
    }[field]
    document = "\n".join(
        [
            "ref: hostile-1",
            "type: single_choice",
            "exam_family: jft_basic",
            "level: A2",
            "section: listening",
            "topic: work",
            media_line,
            "options: [{id: A, html: a}, {id: B, html: b}, {id: C, html: c}]",
            "key: A",
        ]
    )
    # encoded here: the test client's own encoder leaves a temporary file open for
    # bodies over 500 kB (a ResourceWarning, which the suite treats as an error)
    boundary, body = encode_multipart(
        {"document": document, "media": FileStorage(io.BytesIO(data), filename)}
    )
    return browser.post(
        "/author/items/new", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_a_decompression_bomb_image_is_refused(app, make_staff):
    """A small picture that claims 30000 x 30000 pixels is refused before decoding."""
    bomb = decompression_bomb_png(30_000)
    assert len(bomb) < 200 * 1024
    response = author_upload(app, make_staff, "huge.png", bomb, "image")
    assert response.status_code == 422
    assert "huge.png" in response.text and "pixels" in response.text
    assert nothing_imported(app)


def test_a_very_long_recording_is_refused(app, make_staff):
    """A recording over ten minutes is refused, named, and nothing is stored."""
    rate = 2000
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:  # eleven minutes of 8-bit silence
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(b"\x80" * (rate * 660))
    response = author_upload(app, make_staff, "long.wav", buffer.getvalue(), "audio")
    assert response.status_code == 422
    assert "long.wav" in response.text and "longer than 600 s" in response.text
    assert nothing_imported(app)


def test_an_upload_over_the_request_limit_is_refused(app, make_staff):
    """A request body over MAX_CONTENT_LENGTH is refused before it is read."""
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    response = author_upload(app, make_staff, "big.png", b"\0" * (2 * 1024 * 1024), "image")
    assert response.status_code == 413
    assert nothing_imported(app)


def test_a_script_in_uploaded_item_html_is_removed(app, make_staff, client):
    """Item HTML is sanitised on the way in: no script, handler or javascript: URL."""
    author = make_staff(Role.AUTHOR)
    browser = candidate_browser(app, author.email)
    document = "\n".join(
        [
            "ref: hostile-html",
            "type: single_choice",
            "exam_family: jft_basic",
            "level: A2",
            "section: reading",
            "topic: work",
            'stem: "<p onclick=\\"steal()\\">x<script>alert(1)</script>'
            '<a href=\\"javascript:alert(2)\\">y</a><img src=x onerror=alert(3)></p>"',
            "options: [{id: A, html: a}, {id: B, html: b}, {id: C, html: c}]",
            "key: A",
        ]
    )
    saved = browser.post("/author/items/new", data={"document": document})
    assert saved.status_code in (302, 303, 422)
    with app.app_context():
        from item_bank.models import ItemVersion

        stems = [v.content["stem"] for v in db.session.scalars(select(ItemVersion))]
    for stem in stems:
        assert not re.search(r"<script|onclick|onerror|javascript:", stem, re.IGNORECASE)


# ---- 6. the audit log ------------------------------------------------------------------------


def test_no_route_writes_to_the_audit_log(app):
    """The url_map has no audit route that takes a write method."""
    writable = [
        (rule.rule, sorted(rule.methods & UNSAFE))
        for rule in app.url_map.iter_rules()
        if "audit" in rule.rule.lower() or "audit" in rule.endpoint.lower()
        if rule.methods & UNSAFE
    ]
    assert writable == []
    audit_routes = [rule for rule in app.url_map.iter_rules() if "audit" in rule.rule]
    assert audit_routes, "the operators' audit page exists"


def test_audit_entries_are_only_ever_added(app, client, clock, world, make_candidate, auth_headers):
    """A day of operations (booking, check-in, pause, extension, void, release, the
    scheduler) only inserts audit entries: none is updated or deleted, and an attempt to
    post to the audit page changes nothing."""
    changed: list[str] = []

    def on_update(_mapper, _connection, target) -> None:
        changed.append(f"update {target.id}")

    def on_delete(_mapper, _connection, target) -> None:
        changed.append(f"delete {target.id}")

    def on_statement(state) -> None:
        statement = state.statement
        table = getattr(statement, "table", None)
        if (state.is_update or state.is_delete) and getattr(table, "name", "") == "audit_log":
            changed.append(str(statement))

    event.listen(AuditEntry, "before_update", on_update)
    event.listen(AuditEntry, "before_delete", on_delete)
    event.listen(Session, "do_orm_execute", on_statement)
    try:
        created = schedule(client, world, NEXT_WEEK)
        seated = [
            seat(app, client, clock, world, make_candidate, auth_headers, created["id"])
            for _ in range(2)
        ]
        states = open_and_start(client, clock, world, created["id"], seated)
        proctor = world["headers"]["proctor"]
        for path, body in (
            (f"/api/v1/attempts/{states[0]['id']}/pause", {"reason": "toilet"}),
            (f"/api/v1/attempts/{states[0]['id']}/resume", {"reason": "back"}),
            (f"/api/v1/attempts/{states[0]['id']}/extend", {"seconds": 60, "reason": "alarm"}),
            (f"/api/v1/attempts/{states[1]['id']}/void", {"reason": "phone"}),
        ):
            assert client.post(path, json=body, headers=proctor).status_code == 200
        with app.app_context():
            before = db.session.execute(
                select(
                    AuditEntry.id, AuditEntry.action, AuditEntry.before, AuditEntry.after
                ).order_by(AuditEntry.id)
            ).all()
        clock.advance(hours=2)
        release(app, clock, created["id"])
        operator = world["operator"]
        browser = candidate_browser(app, operator.email)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert browser.open("/staff/operations/audit", method=method).status_code == 405
        with app.app_context():
            after = db.session.execute(
                select(
                    AuditEntry.id, AuditEntry.action, AuditEntry.before, AuditEntry.after
                ).order_by(AuditEntry.id)
            ).all()
    finally:
        event.remove(AuditEntry, "before_update", on_update)
        event.remove(AuditEntry, "before_delete", on_delete)
        event.remove(Session, "do_orm_execute", on_statement)
    assert len(before) >= 8
    assert after[: len(before)] == before
    assert changed == []
