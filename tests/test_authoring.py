"""The authors' pages: create, edit, validate, review by a second person, preview, history."""

from __future__ import annotations

import io
import json
import re

import pytest
import yaml
from sqlalchemy import select

from item_bank.models import Item
from testing_center.accounts.models import Role
from testing_center.extensions import db

from .conftest import PASSWORD
from .test_media import _encode, _tone

DOCUMENT = {
    "ref": "auth-1",
    "type": "single_choice",
    "exam_family": "jlpt",
    "level": "N5",
    "section": "vocabulary",
    "topic": "food",
    "stem": "<p>りんごは　どれですか。</p>",
    "options": [{"id": k, "html": f"<p>{k}</p>"} for k in "ABCD"],
    "key": "C",
    "explanation": {"en": "C is the apple.", "ja": "Cです。"},
}


def signed_in(app, user):
    client = app.test_client()
    assert (
        client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 302
    )
    return client


@pytest.fixture
def authors(app, make_staff):
    return signed_in(app, make_staff(Role.AUTHOR)), signed_in(app, make_staff(Role.AUTHOR))


def save_new(client, document, files=None):
    data = {"document": yaml.safe_dump(document, allow_unicode=True)}
    if files:
        data["media"] = files
    return client.post("/author/items/new", data=data, content_type="multipart/form-data")


def item_exists(app, ref):
    with app.app_context():
        return db.session.scalar(select(Item).where(Item.ref == ref)) is not None


def test_create_item_from_the_editor(authors, app):
    """A valid document is saved as a draft and the item page shows it."""
    writer, _ = authors
    response = save_new(writer, DOCUMENT)
    assert response.status_code == 302
    page = writer.get("/author/items/auth-1").get_data(as_text=True)
    assert "v1 (draft)" in page
    assert "りんご" in page


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("ref: [unclosed", "not valid YAML"),
        ("- just\n- a list", "must be one item"),
        (yaml.safe_dump({**DOCUMENT, "key": "Z"}), "key &#39;Z&#39; is not one of the option ids"),
        (yaml.safe_dump({**DOCUMENT, "stem": "<p onclick='x()'>x</p>"}), "event handler"),
    ],
)
def test_invalid_documents_are_shown_back_and_not_saved(authors, app, text, problem):
    """An invalid document comes back with its problems (422) and nothing is stored."""
    writer, _ = authors
    response = writer.post("/author/items/new", data={"document": text})
    assert response.status_code == 422
    assert problem in response.get_data(as_text=True)
    assert not item_exists(app, "auth-1")


def test_review_needs_a_second_author(authors, app):
    """The writer cannot approve their own version; a second author can."""
    writer, reviewer = authors
    save_new(writer, DOCUMENT)
    writer.post("/author/items/auth-1/submit")
    refused = writer.post("/author/items/auth-1/approve", follow_redirects=True)
    assert "second person" in refused.get_data(as_text=True)
    reviewer.post("/author/items/auth-1/approve")
    assert "v1 (approved)" in reviewer.get("/author/items/auth-1").get_data(as_text=True)


def test_edit_after_approval_makes_version_two_with_diff(authors, app):
    """Editing an approved item creates version 2; its page shows what changed."""
    writer, reviewer = authors
    save_new(writer, DOCUMENT)
    writer.post("/author/items/auth-1/submit")
    reviewer.post("/author/items/auth-1/approve")
    edited = yaml.safe_dump({**DOCUMENT, "key": "D"}, allow_unicode=True)
    assert writer.post("/author/items/auth-1/edit", data={"document": edited}).status_code == 302
    page = writer.get("/author/items/auth-1").get_data(as_text=True)
    assert "v1 (approved)" in page and "v2 (draft)" in page
    assert "-key: C" in page and "+key: D" in page


def test_ref_cannot_change_in_an_edit(authors, app):
    """An edit that renames the item is refused."""
    writer, _ = authors
    save_new(writer, DOCUMENT)
    renamed = yaml.safe_dump({**DOCUMENT, "ref": "other"})
    assert writer.post("/author/items/auth-1/edit", data={"document": renamed}).status_code == 422


def test_listening_item_with_uploaded_audio(authors, app):
    """Uploaded audio is processed and stored; the preview plays the author's copy."""
    writer, _ = authors
    document = {**DOCUMENT, "audio": "media/question.wav", "play_limit": 2}
    wav = (io.BytesIO(_encode(_tone(800), "wav")), "question.wav")
    assert save_new(writer, document, files=[wav]).status_code == 302
    page = writer.get("/author/items/auth-1").get_data(as_text=True)
    config = json.loads(re.search(r'id="player-config">(.*?)</script>', page, re.S).group(1))
    audio_url = config["preview"]["sections"][0]["items"][0]["audio"]["url"]
    assert writer.get(audio_url).mimetype == "audio/mpeg"
    edit_page = writer.get("/author/items/auth-1/edit").get_data(as_text=True)
    assert re.search(r"audio: media/[0-9a-f]{64}\.mp3", edit_page)


def test_search_and_filters(authors, app):
    """The list finds items by text in the stem and filters by status."""
    writer, _ = authors
    save_new(writer, DOCUMENT)
    save_new(writer, {**DOCUMENT, "ref": "auth-2", "stem": "<p>みかんは　どれですか。</p>"})
    found = writer.get("/author/items?q=みかん").get_data(as_text=True)
    assert "auth-2" in found and "auth-1" not in found
    assert "auth-1" not in writer.get("/author/items?status=approved").get_data(as_text=True)


def test_candidates_cannot_author(app, make_candidate):
    """The item bank pages are closed to candidates."""
    client = signed_in(app, make_candidate())
    assert client.get("/author/items").status_code == 403
    assert client.post("/author/items/new", data={"document": "x"}).status_code == 403
