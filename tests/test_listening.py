"""Listening items: shared conversations, server-counted plays, grants and media access."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.models import Media
from item_bank.services import import_bundles
from testing_center.accounts.models import Role
from testing_center.extensions import db

from .conftest import PASSWORD
from .test_attempts import rows_and_objects_present_alike
from .test_media import _encode, _tone

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
EXAM = "listening-check"


def listening_bundle() -> Bundle:
    common = {
        "type": "single_choice",
        "exam_family": "check",
        "level": "A2",
        "section": "listening",
        "topic": "work",
        "options": [{"id": k, "html": k} for k in "ABC"],
        "key": "A",
    }
    return Bundle(
        stimuli=[
            {
                "ref": "conv-1",
                "kind": "conversation",
                "html": "<p>会話を聞いてください。</p>",
                "audio": "media/conv.wav",
                "play_limit": 1,
            }
        ],
        items=[
            {**common, "ref": "l-1", "stem": "<p>いつ行きますか。</p>", "stimulus": "conv-1"},
            {**common, "ref": "l-2", "stem": "<p>どこで会いますか。</p>", "stimulus": "conv-1"},
            {
                **common,
                "ref": "l-3",
                "stem": '<p>何時ですか。<img src="media/clock.png"></p>',
                "audio": "media/own.wav",
                "play_limit": 2,
            },
        ],
        media={
            "media/conv.wav": _encode(_tone(1500, frequency=330), "wav"),
            "media/own.wav": _encode(_tone(1200, frequency=550), "wav"),
            "media/clock.png": png_bytes(),
        },
        origin="listening-test",
    )


def png_bytes() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, format="PNG")
    return buffer.getvalue()


TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"en": "Listening check"},
    "modes": ["practice"],
    "clock": {"kind": "shared", "duration_seconds": 600},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "listening",
            "title": {"en": "Listening"},
            "select": {"exam_family": "check", "section": "listening", "count": 3},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


@pytest.fixture
def listening(app, make_candidate, auth_headers, client):
    """A candidate with an open attempt at a three-item listening exam."""
    with app.app_context():
        import_bundles(db.session, [listening_bundle()], status="approved", now=NOW)
        load_templates(db.session, [TEMPLATE], now=NOW)
        db.session.commit()
    headers = auth_headers(make_candidate())
    state = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers).json
    return headers, state


def play(client, headers, state, source):
    return client.post(f"/api/v1/attempts/{state['id']}/audio/{source}/plays", headers=headers)


def stored_hashes(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Media.sha256)))


def test_state_shows_plays_but_no_media_address(listening, app):
    """The state says how often each clip may be played, never where the file is."""
    _, state = listening
    items = state["sections"][0]["items"]
    assert [item.get("stimulus") for item in items] == ["s1", "s1", None]
    assert items[2]["audio"] == {"play_limit": 2, "plays_used": 0}
    assert state["stimuli"]["s1"]["audio"] == {"play_limit": 1, "plays_used": 0}
    assert "会話を聞いて" in state["stimuli"]["s1"]["html"]
    text = json.dumps(state)
    audio_hashes = [h for h in stored_hashes(app) if f"/media/{h}" not in items[2]["stem"]]
    assert audio_hashes and not any(h in text for h in audio_hashes)
    assert "conv-1" not in text and "l-1" not in text


def test_a_read_from_rows_presents_plays_as_the_objects_do(listening, client, app, clock):
    """Play counters of item clips and of a shared conversation: the state read as rows
    is the state of the ORM objects."""
    headers, state = listening
    assert play(client, headers, state, "s1").status_code == 200
    assert play(client, headers, state, "q3").status_code == 200
    assert rows_and_objects_present_alike(app, state["id"], clock())


def test_play_limit_enforced_across_reloads(listening, client):
    """Two plays are granted, the third refused, and a reload still counts both."""
    headers, state = listening
    first = play(client, headers, state, "q3")
    assert first.status_code == 200
    assert first.json["plays_used"] == 1
    recording = client.get(first.json["url"], headers=headers)
    assert recording.status_code == 200
    assert recording.mimetype == "audio/mpeg"
    assert recording.headers["Cache-Control"] == "private, no-store"
    assert play(client, headers, state, "q3").json["plays_used"] == 2
    reloaded = client.get(f"/api/v1/attempts/{state['id']}", headers=headers).json
    assert reloaded["sections"][0]["items"][2]["audio"]["plays_used"] == 2
    third = play(client, headers, state, "q3")
    assert third.status_code == 409
    assert third.json["error"]["code"] == "play_limit_reached"


def test_shared_conversation_counts_once_for_its_items(listening, client):
    """A conversation shared by two items is one recording with one play count."""
    headers, state = listening
    assert play(client, headers, state, "s1").status_code == 200
    assert play(client, headers, state, "s1").status_code == 409


def test_recording_needs_a_valid_grant(listening, client):
    """Without a grant, with a forged one or one for another clip, the file is refused."""
    headers, state = listening
    url = play(client, headers, state, "q3").json["url"]
    base = f"/api/v1/attempts/{state['id']}/audio"
    assert client.get(f"{base}/q3", headers=headers).status_code == 403
    assert client.get(f"{base}/q3?grant=forged", headers=headers).status_code == 403
    grant = url.split("grant=")[1]
    assert client.get(f"{base}/s1?grant={grant}", headers=headers).status_code == 403


def test_grant_expires(listening, client, clock):
    """A grant is good for ten minutes of server time, then refused."""
    headers, state = listening
    url = play(client, headers, state, "q3").json["url"]
    clock.advance(seconds=599)
    assert client.get(url, headers=headers).status_code == 200
    clock.advance(seconds=2)
    expired = client.get(url, headers=headers)
    assert expired.status_code == 403
    assert expired.json["error"]["code"] == "invalid_grant"


def test_other_candidates_cannot_play_or_fetch(listening, client, make_candidate, auth_headers):
    """Another candidate gets 404 for the plays and 403 for a grant that is not theirs."""
    headers, state = listening
    url = play(client, headers, state, "q3").json["url"]
    intruder = auth_headers(make_candidate())
    assert play(client, intruder, state, "q3").status_code == 404
    assert client.get(url, headers=intruder).status_code == 403


def test_unknown_source_and_closed_attempt(listening, client):
    """An unknown recording is 404; after finishing, plays are refused."""
    headers, state = listening
    assert play(client, headers, state, "q1").status_code == 404
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    assert play(client, headers, state, "q3").status_code == 409


def test_stored_media_access(listening, client, app, make_staff):
    """Images are public and cached for good; audio files are for staff only."""
    headers, state = listening
    stem = state["sections"][0]["items"][2]["stem"]
    image_url = stem.split('src="')[1].split('"')[0]
    image = client.get(image_url)
    assert image.status_code == 200
    assert "immutable" in image.headers["Cache-Control"]
    audio_hash = next(h for h in stored_hashes(app) if h not in image_url)
    assert client.get(f"/media/{audio_hash}", headers=headers).status_code == 404
    author = make_staff(Role.AUTHOR)
    staff = app.test_client()
    staff.post("/login", data={"email": author.email, "password": PASSWORD})
    assert staff.get(f"/media/{audio_hash}").status_code == 200


def test_grant_ends_with_the_attempt(listening, client):
    """A grant cannot fetch the recording once the attempt is finished."""
    headers, state = listening
    url = play(client, headers, state, "q3").json["url"]
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    assert client.get(url, headers=headers).status_code == 409
