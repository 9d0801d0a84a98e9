"""Human-typable random codes with a check symbol (admission numbers, later certificates).

Crockford's Base32 (digits and letters without I, L, O, U: nothing to misread) carries
the random part; the check symbol is the value mod 37 in Crockford's check alphabet, so
any single wrong character and any swap of two neighbours is caught. Codes are random,
not sequential: a number says nothing about how many others exist.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHECK_ALPHABET = ALPHABET + "*~$=U"
READ_AS = {"O": "0", "I": "1", "L": "1"}  # what people type for the digits


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
