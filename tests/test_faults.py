"""Clock faults: the server's clock is the only one, and every instant is UTC.

A candidate's computer set to the wrong time changes nothing: saves carry no time, the
deadline is the server's, the remaining time is computed by the server, and the exam
page counts down from it on its own monotonic clock. A server moved to another time
zone (``TZ``, and PostgreSQL's session zone ``PGTZ``) stores and answers the same
instants.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from item_bank.db import Base
from testing_center.clock import system_clock
from testing_center.extensions import db

from .conftest import START
from .operations_setup import NEXT_WEEK, schedule
from .test_attacks import open_and_start, seat
from .test_browser import browser, live_server, page, sign_in_and_start  # noqa: F401

WRONG_CLIENT_TIMES = {
    "Date": "Mon, 01 Jan 2001 00:00:00 GMT",
    "X-Client-Time": "2040-01-01T00:00:00+00:00",
}


@pytest.fixture
def running(app, client, clock, world, make_candidate, auth_headers):
    """A candidate in a proctored exam that started at the session's start."""
    created = schedule(client, world, NEXT_WEEK)
    seated = [seat(app, client, clock, world, make_candidate, auth_headers, created["id"])]
    (state,) = open_and_start(client, clock, world, created["id"], seated)
    return seated[0][1], state


def test_remaining_time_is_the_servers_whatever_the_client_says(client, clock, running):
    """The state's remaining_seconds is the server's deadline minus the server's clock;
    a client's Date header or any time it sends does not enter into it."""
    headers, state = running
    clock.advance(minutes=7, seconds=30)
    plain = client.get(f"/api/v1/attempts/{state['id']}", headers=headers).json
    skewed = client.get(
        f"/api/v1/attempts/{state['id']}",
        headers={**headers, **WRONG_CLIENT_TIMES},
        query_string={"now": "2001-01-01T00:00:00Z"},
    ).json
    deadline = dt.datetime.fromisoformat(state["deadline_at"])
    assert plain["remaining_seconds"] == (deadline - clock()).total_seconds() == 1800 - 450
    assert skewed["remaining_seconds"] == plain["remaining_seconds"]
    assert skewed["server_time"] == plain["server_time"] == clock().isoformat()
    assert skewed["deadline_at"] == state["deadline_at"]


def test_a_save_after_the_server_deadline_is_refused_whatever_the_client_says(
    client, clock, running
):
    """Past the server's deadline a save is refused even if the client claims an earlier
    time; before it a save is taken even if the client claims a later one."""
    headers, state = running
    url = f"/api/v1/attempts/{state['id']}/responses/q1"
    clock.advance(minutes=29, seconds=59)
    early = client.put(
        url,
        json={"response": "A", "client_seq": 1},
        headers={**headers, "Date": "Mon, 01 Jan 2040 00:00:00 GMT"},
    )
    assert early.status_code == 200 and early.json["accepted"]
    clock.advance(seconds=1)
    late = client.put(
        url,
        json={"response": "B", "client_seq": 2},
        headers={**headers, **WRONG_CLIENT_TIMES},
    )
    assert late.status_code == 409 and late.json["error"]["code"] == "deadline_passed"
    forged = client.put(
        url,
        json={"response": "B", "client_seq": 3, "saved_at": "2001-01-01T00:00:00Z"},
        headers=headers,
    )
    assert forged.status_code == 422
    state = client.get(f"/api/v1/attempts/{state['id']}", headers=headers).json
    assert state["status"] == "finished"
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=headers).json
    assert result["finish_reason"] == "deadline"
    assert result["finished_at"] == (NEXT_WEEK + dt.timedelta(minutes=30)).isoformat()


def test_the_server_clock_is_utc_in_any_time_zone(monkeypatch):
    """The system clock answers an aware UTC instant whatever the process's TZ."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    readings = []
    for zone in ("Asia/Tokyo", "America/Los_Angeles", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        moment = system_clock()
        readings.append(moment)
        assert moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)
    monkeypatch.delenv("TZ")
    time.tzset()
    assert max(readings) - min(readings) < dt.timedelta(seconds=5)


# ---- a whole exam day in two server time zones -------------------------------------------

EXAM_DAY = r"""
import datetime as dt, json, sys
sys.path.insert(0, sys.argv[2])
import sqlalchemy as sa
from item_bank.db import Base, UTCDateTime
from tests.conftest import FakeClock, START, settings_for
from tests.operations_setup import EXAM, TEMPLATE, bundle
from testing_center import create_app
from testing_center.accounts.models import Role
from testing_center.accounts.services import CandidateDetails, create_user, register_candidate
from testing_center.extensions import db
from testing_center.operations.scheduler import run_cycle
from exam_templates.services import load_templates
from item_bank.services import import_bundles

clock = FakeClock()
app = create_app(settings_for(sys.argv[1], CLOCK=clock, API_TOKEN_TTL_SECONDS=30 * 86400))
client = app.test_client()
with app.app_context():
    import_bundles(db.session, [bundle()], status="approved", now=clock())
    load_templates(db.session, [TEMPLATE], now=clock())
    for email, role in (("op@tz.test", Role.OPERATOR), ("pr@tz.test", Role.PROCTOR)):
        create_user(
            db.session, email=email, password="correct-horse-battery", role=role, now=clock()
        )
    register_candidate(db.session, CandidateDetails(
        "cand@tz.test", "correct-horse-battery", "Tz Candidate", dt.date(1999, 2, 3), "UZ",
        "AB1234567"), clock())
    db.session.commit()

def token(email):
    answer = client.post(
        "/api/v1/auth/token", json={"email": email, "password": "correct-horse-battery"}
    )
    return {"Authorization": "Bearer " + answer.json["token"]}

op, pr, cand = token("op@tz.test"), token("pr@tz.test"), token("cand@tz.test")
seen = {}
client.post("/api/v1/centers", json={"code": "TAS", "name": "Tashkent", "city": "Tashkent",
            "address": "1 Street", "timezone": "Asia/Tashkent"}, headers=op)
created = client.post("/api/v1/sessions", json={"exam_code": EXAM, "center_code": "TAS",
    "starts_at": "2026-12-03T14:00:00+05:00", "capacity": 5,
    "results_release_at": "2026-12-03T18:00:00+05:00"}, headers=op).json
seen["session"] = {k: v for k, v in created.items() if k != "id"}  # sequences differ
client.post(f"/api/v1/sessions/{created['id']}/proctors", json={"email": "pr@tz.test"}, headers=op)
clock.advance(days=1)
booking = client.post(f"/api/v1/sessions/{created['id']}/bookings", headers=cand).json
seen["booking"] = {k: booking[k] for k in ("booked_at", "status")}
clock.current = dt.datetime(2026, 12, 3, 8, 30, tzinfo=dt.UTC)
seen["check_in"] = client.post(f"/api/v1/bookings/{booking['booking_id']}/check-in",
    json={"id_document_number": "AB1234567"}, headers=pr).json["checked_in_at"]
clock.current = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
client.post(f"/api/v1/sessions/{created['id']}/open", headers=pr)
state = client.post(
    "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=cand
).json
seen["start"] = {k: state[k] for k in ("started_at", "deadline_at", "remaining_seconds")}
clock.advance(minutes=3)
seen["save"] = client.put(f"/api/v1/attempts/{state['id']}/responses/q1",
    json={"response": "A", "client_seq": 1}, headers=cand).json["saved_at"]
clock.advance(hours=4)
with app.app_context():
    run_cycle(db.session, clock)
seen["result"] = {k: v for k, v in client.get(f"/api/v1/attempts/{state['id']}/result",
    headers=cand).json.items() if k in ("finished_at", "finish_reason", "released")}
stored = {}
with app.app_context():
    for table in Base.metadata.sorted_tables:
        kinds = (sa.DateTime, sa.Date, UTCDateTime)
        columns = [c for c in table.columns if isinstance(c.type, kinds)]
        if columns:
            rows = db.session.execute(sa.select(*columns)).all()
            stored[table.name] = sorted(
                json.dumps([v.isoformat() if v is not None else None for v in row]) for row in rows
            )
    db.engine.dispose()
print(json.dumps({"api": seen, "stored": stored}, sort_keys=True))
"""


def exam_day_in_zone(database_url: str, zone: str) -> dict:
    environment = {**os.environ, "TZ": zone, "PGTZ": zone}
    finished = subprocess.run(
        [sys.executable, "-c", EXAM_DAY, database_url, str(Path(__file__).parents[1])],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_a_server_in_another_time_zone_stores_and_answers_the_same_instants(app, database_url):
    """An exam day run by a server in UTC and again by one in Tokyo (process TZ and the
    database session's zone) leaves the same instants in every date and time column and
    gives the same answers, all in UTC, the session's local start in Tashkent time."""
    in_utc = exam_day_in_zone(database_url, "UTC")
    with app.app_context(), db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    in_tokyo = exam_day_in_zone(database_url, "Asia/Tokyo")
    assert in_tokyo["api"] == in_utc["api"]
    assert in_tokyo["stored"] == in_utc["stored"]
    session = in_utc["api"]["session"]
    assert session["starts_at"] == "2026-12-03T09:00:00+00:00"
    assert "14:00" in session["local_start"]
    assert in_utc["api"]["start"]["deadline_at"] == "2026-12-03T09:30:00+00:00"
    assert in_utc["api"]["result"] == {
        "finished_at": "2026-12-03T09:30:00+00:00",
        "finish_reason": "deadline",
        "released": True,
    }
    instants = [
        value for rows in in_utc["stored"].values() for row in rows for value in json.loads(row)
    ]
    assert all(
        value is None or re.fullmatch(r"\d{4}-\d\d-\d\d", value) or value.endswith("+00:00")
        for value in instants
    ), "every stored instant is an aware UTC one"
    assert START.isoformat() in {value for value in instants if value}


# ---- the exam page with a wrong computer clock ---------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("wrong", ["2001-01-01T00:00:00Z", "2040-06-01T12:00:00Z"])
def test_the_exam_page_counts_down_the_servers_time_on_a_wrong_computer_clock(
    page,  # noqa: F811 - the fixture of tests/test_browser.py
    live_server,  # noqa: F811
    make_candidate,
    wrong,
):
    """With the computer's clock years off, the page shows the server's remaining time
    and saves answers as usual."""
    page.clock.install(time=dt.datetime.fromisoformat(wrong.replace("Z", "+00:00")))
    sign_in_and_start(page, live_server, make_candidate())
    assert re.fullmatch(r"(19|20):\d\d", page.text_content("#timer"))
    page.locator("#answer-area .option").nth(1).click()
    page.wait_for_selector('#save-status[data-kind="saved"]')
    assert re.fullmatch(r"(19|20):\d\d", page.text_content("#timer"))


# ---- faults found by the drills, kept as tests ------------------------------------------


def test_a_key_made_this_second_signs_a_certificate_issued_this_second():
    """Token times are whole seconds: a key created mid-second (the first certificate of a
    fresh installation) must still sign a token issued in that same second."""
    from certificates import signing

    moment = dt.datetime(2026, 12, 3, 13, 0, 0, 750_000, tzinfo=dt.UTC)
    key = signing.generate_key(moment)
    token = signing.sign({"iat": signing.numeric_date(moment), "sub": "JP-TEST"}, key)
    assert token.count(".") == 2


def test_a_database_outage_answers_503_with_retry_after(app, client, running, monkeypatch):
    """A lost database connection is a 503 JSON error the page retries, not a 500."""
    from sqlalchemy.exc import OperationalError

    from testing_center.api import attempts

    headers, state = running

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(attempts, "save_response", unreachable)
    response = client.put(
        f"/api/v1/attempts/{state['id']}/responses/q1",
        json={"response": "A", "client_seq": 1},
        headers=headers,
    )
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.json["error"]["code"] == "database_unavailable"
