"""Japanese-aware normalisation of typed answers (text entry items).

Candidates type on many keyboards: full-width digits and letters, the ideographic space,
stray spaces at the ends, upper or lower case. NFKC folds width variants (ＡＢＣ１２３ ->
ABC123, half-width katakana -> full-width); whitespace is trimmed and collapsed; case
is folded. Katakana and hiragana count as the same only when the item says so, since
some items test exactly that distinction.
"""

from __future__ import annotations

import unicodedata

KATAKANA_START, KATAKANA_END = 0x30A1, 0x30F6  # ァ .. ヶ
KANA_OFFSET = 0x60  # ア (U+30A2) - あ (U+3042)


def katakana_to_hiragana(text: str) -> str:
    """Map each katakana letter that has a hiragana twin onto it (ー and ヷ-ヺ stay)."""
    return "".join(
        chr(ord(char) - KANA_OFFSET) if KATAKANA_START <= ord(char) <= KATAKANA_END else char
        for char in text
    )


def normalize_answer(text: str, *, kana_equivalent: bool = False) -> str:
    """Return the comparable form of a typed answer."""
    folded = unicodedata.normalize("NFKC", text)
    folded = " ".join(folded.split()).casefold()
    return katakana_to_hiragana(folded) if kana_equivalent else folded
