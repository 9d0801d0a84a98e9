"""Importing bundles with stimuli and media, all-or-nothing, and export round trips."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from item_bank.bundle import Bundle
from item_bank.errors import InvalidItem
from item_bank.models import Item, ItemEnemy, ItemVersion, Media, Stimulus
from item_bank.services import export_bundle, import_bundles, read_yaml_bundle
from testing_center.extensions import db

from .test_listening import listening_bundle, png_bytes
from .test_media import _encode, _tone

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (Item, ItemVersion, Media, Stimulus, ItemEnemy)
    )


def write_yaml_bank(folder: Path, **changes) -> Path:
    """A YAML file with a stimulus, audio, an image and an enemy pair, and its media."""
    (folder / "media").mkdir(exist_ok=True)
    (folder / "media" / "talk.wav").write_bytes(_encode(_tone(1000), "wav"))
    (folder / "media" / "sign.png").write_bytes(png_bytes())
    base = {
        "type": "single_choice",
        "exam_family": "jlpt",
        "level": "N5",
        "section": "listening",
        "topic": "shop",
        "options": [{"id": k, "html": f"<p>{k}</p>"} for k in "ABC"],
        "key": "B",
    }
    document = {
        "stimuli": [
            {
                "ref": "talk",
                "kind": "conversation",
                "audio": "media/talk.wav",
                "play_limit": 2,
                "html": "<p>聞いてください</p>",
            }
        ],
        "items": [
            {
                **base,
                "ref": "a-1",
                "stem": '<p><img src="media/sign.png" alt="">何ですか。</p>',
                "stimulus": "talk",
                "fixed_order": True,
                "group": "set-1",
                "enemies": ["a-2"],
            },
            {
                **base,
                "ref": "a-2",
                "stem": "<p>どこですか。</p>",
                "stimulus": "talk",
                "group": "set-1",
                "explanation": {"en": "Because.", "ja": "説明"},
                "tags": ["shop"],
                "difficulty": {"p": 0.7, "irt": {"model": "2pl", "a": 1.2, "b": -0.5}},
            },
        ],
    }
    for key, value in changes.items():
        document[key] = value
    path = folder / "bank.yaml"
    plain = json.loads(json.dumps(document))  # no shared objects, so no YAML aliases
    path.write_text(yaml.safe_dump(plain, allow_unicode=True), encoding="utf-8")
    return path


def test_yaml_import_stores_media_stimulus_and_enemies(app, tmp_path):
    """Media is stored once by hash, images point at it, each version copies its stimulus."""
    bundle = read_yaml_bundle(write_yaml_bank(tmp_path))
    with app.app_context():
        report = import_bundles(db.session, [bundle], status="approved", now=NOW)
        assert (report.created, report.media_stored) == (2, 2)
        assert counts() == (2, 2, 2, 1, 1)
        version = db.session.scalar(select(ItemVersion).join(Item).where(Item.ref == "a-1"))
        assert version.content["stem"].startswith('<p><img src="/media/')
        assert version.content["stimulus"]["ref"] == "talk"
        assert version.content["stimulus"]["audio"]["play_limit"] == 2
        assert version.content["stimulus"]["audio"]["duration_ms"] > 500
        assert version.details["language"] == "ja"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stimuli": []}, "unknown stimulus 'talk'"),
        (
            {"stimuli": [{"ref": "talk", "kind": "conversation", "audio": "media/none.wav"}]},
            "media file 'media/none.wav' is missing",
        ),
        (
            {"stimuli": [{"ref": "talk", "kind": "conversation", "audio": "../bank.yaml"}]},
            "outside the package",
        ),
        (
            {"stimuli": [{"ref": "talk", "kind": "conversation", "audio": "media/sign.png"}]},
            "media/sign.png",
        ),
        ({"stimuli": [{"ref": "talk", "kind": "lecture", "html": "<p>x</p>"}]}, "kind must be"),
    ],
)
def test_bad_bundles_leave_the_bank_unchanged(app, tmp_path, change, problem):
    """Any broken reference or media file refuses the whole import, naming the problem."""
    with app.app_context():
        import_bundles(db.session, [listening_bundle()], status="approved", now=NOW)
        db.session.commit()
        before = counts()
        bundle = read_yaml_bundle(write_yaml_bank(tmp_path, **change))
        with pytest.raises(InvalidItem) as raised:
            import_bundles(db.session, [bundle], status="approved", now=NOW)
        db.session.rollback()
        assert any(problem in p for p in raised.value.problems), raised.value.problems
        assert counts() == before


def test_unknown_enemy_refused(app):
    """An enemy ref that is neither imported nor in the bank is refused."""
    bundle = listening_bundle()
    bundle.items[2]["enemies"] = ["nobody"]
    with app.app_context(), pytest.raises(InvalidItem, match="unknown enemy item 'nobody'"):
        import_bundles(db.session, [bundle], status="approved", now=NOW)


def test_export_reimports_identically(app, tmp_path):
    """Export, import into an empty bank, export again: the same documents and media."""
    with app.app_context():
        import_bundles(
            db.session, [read_yaml_bundle(write_yaml_bank(tmp_path))], status="approved", now=NOW
        )
        first = export_bundle(db.session)
        db.session.rollback()
        assert counts() == (0, 0, 0, 0, 0)
        import_bundles(db.session, [replace(first, trusted=True)], status="approved", now=NOW)
        second = export_bundle(db.session)
    assert second.items == first.items
    assert second.stimuli == first.stimuli
    assert second.media == first.media
    a2 = next(item for item in first.items if item["ref"] == "a-2")
    assert a2["difficulty"]["irt"]["a"] == 1.2
    assert next(i for i in first.items if i["ref"] == "a-1")["enemies"] == ["a-2"]
    assert a2["group"] == "set-1"


def test_export_skips_drafts_and_retired(app):
    """Only approved versions of active items are exported."""
    with app.app_context():
        import_bundles(db.session, [listening_bundle()], status="draft", now=NOW)
        assert export_bundle(db.session).items == []


def test_plain_bundle_without_media(app):
    """A bundle of documents without media imports through the same path."""
    document = {
        "ref": "p-1",
        "type": "true_false",
        "exam_family": "ssw_accommodation",
        "level": "1",
        "section": "knowledge",
        "topic": "hygiene",
        "stem": "<p>タオルは毎日洗います。</p>",
        "key": True,
    }
    with app.app_context():
        report = import_bundles(db.session, [Bundle(items=[document])], status="approved", now=NOW)
        assert report.created == 1


def test_qti_package_carries_the_bank(app, tmp_path):
    """A bank export written as QTI reads back as the same documents and media."""
    from item_bank.qti import read_qti, write_qti_package

    with app.app_context():
        import_bundles(
            db.session, [read_yaml_bundle(write_yaml_bank(tmp_path))], status="approved", now=NOW
        )
        exported = export_bundle(db.session)
    package = tmp_path / "bank.zip"
    write_qti_package(exported, package)
    back = read_qti(package)
    assert back.items == exported.items
    assert back.stimuli == exported.stimuli
    assert back.media == exported.media
    assert next(i for i in back.items if i["ref"] == "a-1")["fixed_order"] is True


def test_fixed_order_is_never_shuffled(app, tmp_path):
    """Assembly leaves a fixed-order item's options as written, even when shuffling."""
    from item_bank.services import approved_pool

    with app.app_context():
        import_bundles(
            db.session, [read_yaml_bundle(write_yaml_bank(tmp_path))], status="approved", now=NOW
        )
        pool = {entry.item_ref: entry for entry in approved_pool(db.session, {})}
    assert pool["a-1"].option_ids == ()
    assert pool["a-2"].option_ids == ("A", "B", "C")


def test_hash_named_upload_is_processed_unless_trusted(app):
    """A file named by its own hash is stored as it is only from a trusted import."""
    import hashlib

    wav = _encode(_tone(600), "wav")
    name = f"media/{hashlib.sha256(wav).hexdigest()}.wav"
    document = {
        "ref": "h-1",
        "type": "true_false",
        "exam_family": "x",
        "level": "1",
        "section": "s",
        "topic": "t",
        "stem": "<p>x</p>",
        "key": True,
        "audio": name,
    }
    with app.app_context():
        import_bundles(
            db.session, [Bundle(items=[document], media={name: wav})], status="approved", now=NOW
        )
        stored = db.session.scalar(select(Media))
        assert stored.mime_type == "audio/mpeg"
        assert stored.data != wav
