"""Every interface text is translated (ja, uz, ru, en) and the compiled catalogues are current."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).parent.parent / "testing_center" / "translations"
LANGUAGES = ("ja", "uz", "ru", "en")


def catalogue(lang: str, suffix: str):
    path = TRANSLATIONS / lang / "LC_MESSAGES" / f"messages.{suffix}"
    with path.open("rb") as file:
        return read_po(file, locale=lang) if suffix == "po" else read_mo(file)


def test_template_lists_messages():
    """The extracted template holds the interface messages."""
    with (TRANSLATIONS / "messages.pot").open("rb") as file:
        template = read_po(file)
    assert len([m for m in template if m.id]) > 50


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_message_is_translated(lang):
    """No message of the template lacks a translation, and none is fuzzy."""
    with (TRANSLATIONS / "messages.pot").open("rb") as file:
        template = read_po(file)
    po = catalogue(lang, "po")
    for message in template:
        if not message.id:
            continue
        translated = po.get(message.id)
        assert translated is not None, (lang, message.id)
        assert all(as_tuple(translated.string)), (lang, message.id)
        assert not translated.fuzzy, (lang, message.id)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalogue_matches_source(lang):
    """The committed .mo file holds exactly the .po file's translations (it was recompiled)."""
    po, mo = catalogue(lang, "po"), catalogue(lang, "mo")
    for message in po:
        if message.id:
            assert mo.get(message.id) is not None, (lang, message.id)
            assert as_tuple(mo.get(message.id).string) == as_tuple(message.string), message.id


def as_tuple(string) -> tuple:
    """Plural translations come as tuples from .po and lists from .mo files."""
    return tuple(string) if isinstance(string, list | tuple) else (string,)
