"""Human-typable random codes with a check symbol: admission numbers and certificate numbers.

Crockford's Base32 (digits and letters without I, L, O, U: nothing to misread) carries
the random part; the check symbol is the value mod 37 in Crockford's check alphabet, so
any single wrong character and any swap of two neighbours is caught (37 is prime and
divides neither 32**k * d nor 31 * 32**k * d for a digit difference 0 < d < 32). Codes are
random, not sequential: a number says nothing about how many others exist.

Certificate numbers (``JP-XXXXX-XXXXX-XXXXC``) carry 14 random symbols, 70 bits: at a
million certificates, a guessed number hits one with odds of about 1 in 10**15.
``parse_certificate_number`` reads what people type (lower case, spaces or no hyphens,
O for 0, I and L for 1) and refuses a wrong check symbol.
"""

from __future__ import annotations

import secrets

from certificates.errors import InvalidNumber

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
READ_AS = {"O": "0", "I": "1", "L": "1"}  # what people type for the digits

CERTIFICATE_PREFIX = "JP"
CERTIFICATE_SYMBOLS = 14  # random symbols, 5 bits each: 70 bits
SEPARATORS = "-‐‑‒–—―"  # hyphens and dashes people (and word processors) type


def new_code(prefix: str, length: int = 10) -> str:
    """Return ``PREFIX-XXXXX-XXXXX`` + check symbol: ``length`` random symbols (50 bits at 10)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(length))
    return f"{prefix}-{group(body + check_symbol(body))}"


def group(symbols: str, size: int = 5) -> str:
    return "-".join(symbols[i : i + size] for i in range(0, len(symbols), size))


def check_symbol(body: str) -> str:
    value = 0
    for symbol in body:
        value = value * 32 + ALPHABET.index(symbol)
    return CHECK_ALPHABET[value % 37]


def normalise(code: str) -> str:
    """Return a typed code in its printed form: upper case, O/I/L read as digits, the
    prefix kept, the hyphens of the random part where they belong."""
    text = "".join(code.split()).upper()
    prefix, _, rest = text.partition("-")
    symbols = "".join(READ_AS.get(c, c) for c in rest if c != "-")
    return f"{prefix}-{group(symbols)}" if rest else text


def is_valid(code: str) -> bool:
    """Whether a (normalised) code is well formed and its check symbol matches."""
    _prefix, _, rest = code.partition("-")
    symbols = rest.replace("-", "")
    if len(symbols) < 2:
        return False
    body, check = symbols[:-1], symbols[-1]
    return all(c in ALPHABET for c in body) and check_symbol(body) == check


# ---- certificate numbers --------------------------------------------------------------


def new_certificate_number(prefix: str = CERTIFICATE_PREFIX) -> str:
    """Return a new random certificate number, e.g. ``JP-4N7QX-B2K9M-TW3D8``.

    14 random symbols (70 bits, from ``secrets``) and the check symbol, in groups of
    five. The caller still enforces uniqueness (a unique constraint): a collision is
    astronomically unlikely, not impossible.
    """
    return new_code(prefix, CERTIFICATE_SYMBOLS)


def parse_certificate_number(text: str, prefix: str = CERTIFICATE_PREFIX) -> str:
    """Return the printed form of a typed certificate number, or raise ``InvalidNumber``.

    Tolerates case, spaces, missing or extra hyphens (and typographic dashes), O for 0
    and I or L for 1. Refuses another prefix, a wrong length, a letter outside the
    alphabet and a wrong check symbol; the error says which, never "not found" (whether
    a well-formed number exists is for the caller to say).
    """
    compact = "".join(c for c in text.upper() if not c.isspace() and c not in SEPARATORS)
    if not compact.startswith(prefix):
        raise InvalidNumber(f"a certificate number starts with {prefix}-")
    symbols = "".join(READ_AS.get(c, c) for c in compact[len(prefix) :])
    if len(symbols) != CERTIFICATE_SYMBOLS + 1:
        raise InvalidNumber(
            f"a certificate number has {CERTIFICATE_SYMBOLS + 1} characters after {prefix}-"
        )
    body, check = symbols[:-1], symbols[-1]
    if any(c not in ALPHABET for c in body) or check not in CHECK_ALPHABET:
        raise InvalidNumber("a certificate number has only digits and the letters A-Z but U")
    if check_symbol(body) != check:
        raise InvalidNumber("a character of the certificate number is wrong (check symbol)")
    return f"{prefix}-{group(symbols)}"


def is_certificate_number(text: str, prefix: str = CERTIFICATE_PREFIX) -> bool:
    """Whether ``text`` reads as a well-formed certificate number (see ``parse_...``)."""
    try:
        parse_certificate_number(text, prefix)
    except InvalidNumber:
        return False
    return True
