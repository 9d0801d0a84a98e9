"""Embedded TrueType fonts for PDF documents (admission tickets, certificates).

ReportLab's standard fonts (Helvetica, ...) have no Japanese, Cyrillic or Uzbek ʻ ʼ, and
its CID Japanese fonts are not embedded, so a reader without them shows empty boxes.
Documents therefore embed (as subsets of the glyphs used) two TrueType families:

- DejaVu Sans, regular and bold, shipped with matplotlib (already a dependency): Latin
  with Uzbek ʻ (U+02BB) and ʼ (U+02BC), Turkish, Cyrillic with the Uzbek Ў Қ Ғ Ҳ.
  Licence: Bitstream Vera / DejaVu (free to embed and redistribute).
- IPAexGothic, shipped by the ``matplotlib-fontja`` package: kana and the JIS X 0213
  kanji, for Japanese text. Licence: IPA Font License v1.0 (free to embed in documents
  and redistribute). It has no bold; bold Japanese is set in the regular weight.

Text is split into runs: a character goes to DejaVu when DejaVu has it, else to
IPAexGothic (IPAexGothic alone lacks the Uzbek Cyrillic letters and much of Latin
Extended-A). Font files are found through the installed packages, without importing
them (importing ``matplotlib_fontja`` reconfigures matplotlib), and registered with
ReportLab once per process, on first use.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

SANS = "DejaVuSans"
SANS_BOLD = "DejaVuSans-Bold"
JAPANESE = "IPAexGothic"


@dataclass(frozen=True)
class FontFile:
    """A TrueType file inside an installed package, and the package that ships it."""

    package: str  # import name, located without importing it
    path: str  # relative to the package's folder
    distribution: str  # what setup.cfg installs


FONT_FILES: dict[str, FontFile] = {
    SANS: FontFile("matplotlib", "mpl-data/fonts/ttf/DejaVuSans.ttf", "matplotlib"),
    SANS_BOLD: FontFile("matplotlib", "mpl-data/fonts/ttf/DejaVuSans-Bold.ttf", "matplotlib"),
    JAPANESE: FontFile("matplotlib_fontja", "fonts/ipaexg.ttf", "matplotlib-fontja"),
}
# per weight, the fonts tried in order for each character
FALLBACKS: dict[bool, tuple[str, ...]] = {False: (SANS, JAPANESE), True: (SANS_BOLD, JAPANESE)}

_lock = threading.Lock()
_registered = False


class FontNotFound(LookupError):
    """A font's package is not installed, or no longer ships the file."""


def font_path(name: str) -> Path:
    """Return the path of the TrueType file of font ``name``."""
    source = FONT_FILES[name]
    spec = importlib.util.find_spec(source.package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / source.path
        if candidate.is_file():
            return candidate
    raise FontNotFound(f"font {name}: install {source.distribution} (needs {source.path})")


def register_fonts() -> None:
    """Register the document fonts with ReportLab (once; safe from several threads).

    ``<b>`` in a paragraph set in DejaVuSans picks DejaVuSans-Bold; IPAexGothic maps
    every style to itself.
    """
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        for name in FONT_FILES:
            pdfmetrics.registerFont(TTFont(name, str(font_path(name))))
        for bold, italic in ((0, 0), (1, 0), (0, 1), (1, 1)):
            addMapping(SANS, bold, italic, SANS_BOLD if bold else SANS)
            addMapping(JAPANESE, bold, italic, JAPANESE)
        _registered = True


def _has_glyph(font_name: str, character: str) -> bool:
    return ord(character) in pdfmetrics.getFont(font_name).face.charToGlyph


def font_for(character: str, bold: bool = False) -> str:
    """The first font of the fallback list that has ``character`` (else the first)."""
    register_fonts()
    fonts = FALLBACKS[bold]
    if character.isspace():
        return fonts[0]
    return next((name for name in fonts if _has_glyph(name, character)), fonts[0])


def runs(text: str, bold: bool = False) -> list[tuple[str, str]]:
    """Split ``text`` into ``(font name, text)`` runs; spaces stay in the current run."""
    result: list[tuple[str, str]] = []
    for character in text:
        name = result[-1][0] if character.isspace() and result else font_for(character, bold)
        if result and result[-1][0] == name:
            result[-1] = (name, result[-1][1] + character)
        else:
            result.append((name, character))
    return result


def markup(text: str, bold: bool = False) -> str:
    """Return ``text`` escaped as ReportLab paragraph markup, each run in its font.

    Line breaks become ``<br/>``. Wrap the result in ``<b>`` only through ``bold``, so
    the bold run fonts are chosen by coverage too.
    """
    parts = []
    for name, chunk in runs(text, bold):
        body = escape(chunk).replace("\n", "<br/>")
        parts.append(f'<font face="{name}">{body}</font>')
    return "".join(parts)


def missing_characters(text: str) -> set[str]:
    """Characters of ``text`` that none of the document fonts can draw."""
    register_fonts()
    return {
        c
        for c in set(text)
        if not c.isspace() and not any(_has_glyph(name, c) for name in FALLBACKS[False])
    }
