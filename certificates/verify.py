"""Offline verification of a certificate PDF or token, with nothing but the public keys.

``verify_pdf(data, jwks, now)``:

1. reads the token from the PDF metadata (document information ``/CertificateToken``,
   else XMP ``tc:token``); a file without one is ``invalid`` (``no_token``), and two
   different tokens in one file are a ``mismatch``;
2. verifies it (``signing.verify``: form, EdDSA, a published key id, the signature, the
   key's signing window at the issue time) and reads the claims; any failure is
   ``invalid`` with the error's code (``bad_signature``, ``unknown_key``, ...);
3. extracts the page text (pypdf) and compares each printed fact with the signed one:
   number, issue date, exam title, name, date of birth, exam date, test centre, every
   section score, total, score range, result and level. The page prints each fact after
   its label in a fixed order (``document.FACT_ORDER``), so the text between two labels
   is the printed value; white space is ignored (line wrapping). A difference is a
   ``mismatch`` problem naming the field (``scores.listening``, ``total``, ...) with
   the printed and the signed value.

``verify_token(token, jwks, now)`` does step 2 alone (a token or the verification URL
of a QR code). ``verify_document`` takes either. What this cannot see: a current
revocation (ask the online service), and edits that leave the text alone (an image
pasted over a score): the signed claims, shown by the online page and by this result,
are what counts.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pypdf import PdfReader

from certificates import document, signing
from certificates.claims import CertificateClaims, verify_certificate_token
from certificates.errors import KeyRingError, TokenError
from certificates.facts import format_date, format_result, format_scale, format_score

MAX_PDF_BYTES = 10 * 1024 * 1024  # a certificate is about 100 kB
_TOKEN = re.compile(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_XMP_TOKEN = re.compile(rb"<tc:token>\s*([A-Za-z0-9_.-]+)\s*</tc:token>")
_SCORE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")

Keys = signing.KeyRing | Mapping[str, Any]


class Status(StrEnum):
    VALID = "valid"  # signature good, printed facts (if a PDF) equal the signed ones
    MISMATCH = "mismatch"  # signature good, but the PDF prints something else
    INVALID = "invalid"  # no token, or a token that does not verify


@dataclass(frozen=True)
class Problem:
    """One finding: ``code`` is ``mismatch``, ``no_token``, ``unreadable_pdf`` or a
    ``TokenError`` code; ``field`` names the fact of a mismatch."""

    code: str
    message: str
    field: str | None = None
    printed: str | None = None
    signed: str | None = None


@dataclass(frozen=True)
class VerificationResult:
    status: Status
    problems: tuple[Problem, ...] = ()
    claims: CertificateClaims | None = None  # the signed facts, when the token verified
    kid: str | None = None
    token: str | None = None

    @property
    def is_valid(self) -> bool:
        return self.status is Status.VALID

    @property
    def mismatched_fields(self) -> tuple[str, ...]:
        return tuple(p.field for p in self.problems if p.code == "mismatch" and p.field)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: status, problems and the signed facts (for the API and the CLI)."""
        claims = self.claims.to_payload() if self.claims else None
        return {
            "status": str(self.status),
            "kid": self.kid,
            "problems": [
                {k: v for k, v in vars(p).items() if v is not None} for p in self.problems
            ],
            "claims": claims,
        }


def verify_token(token: str, keys: Keys, now: dt.datetime) -> VerificationResult:
    """Verify a certificate token (or a verification URL holding one)."""
    token = token_from_text(token)
    try:
        claims, verified = verify_certificate_token(token, keys, now)
    except TokenError as error:
        return VerificationResult(Status.INVALID, (Problem(error.code, str(error)),), token=token)
    except KeyRingError as error:
        return VerificationResult(Status.INVALID, (Problem("bad_keys", str(error)),), token=token)
    return VerificationResult(Status.VALID, claims=claims, kid=verified.kid, token=token)


def verify_pdf(data: bytes, keys: Keys, now: dt.datetime) -> VerificationResult:
    """Verify a certificate PDF: its token, then its printed facts against the signed ones."""
    if len(data) > MAX_PDF_BYTES:
        return _invalid("unreadable_pdf", f"larger than {MAX_PDF_BYTES} bytes")
    try:
        reader = PdfReader(io.BytesIO(data))
        tokens = tokens_in_pdf(reader)
        text = " ".join(page.extract_text() or "" for page in reader.pages)
    except Exception as error:  # any parser failure on an uploaded file means "unreadable"
        return _invalid("unreadable_pdf", f"not a readable PDF ({type(error).__name__})")
    if not tokens:
        return _invalid("no_token", "the file carries no certificate token")
    result = verify_token(tokens[0], keys, now)
    if result.claims is None:
        return result
    problems = list(compare_printed(text, result.claims))
    if len(set(tokens)) > 1:
        problems.insert(
            0, Problem("mismatch", "the metadata holds two different tokens", field="metadata")
        )
    status = Status.MISMATCH if problems else Status.VALID
    return VerificationResult(status, tuple(problems), result.claims, result.kid, result.token)


def verify_document(data: bytes | str, keys: Keys, now: dt.datetime) -> VerificationResult:
    """A PDF (bytes starting ``%PDF``) or a token / verification URL (text)."""
    if isinstance(data, bytes):
        if data.lstrip()[:5] == b"%PDF-":
            return verify_pdf(data, keys, now)
        try:
            data = data.decode("ascii")
        except UnicodeDecodeError:
            return _invalid("malformed", "neither a PDF nor a token")
    return verify_token(data, keys, now)


def token_from_text(text: str) -> str:
    """The token of a verification URL (``...verify?t=<token>``), else the text stripped."""
    text = text.strip()
    if "?" in text and "t=" in text:
        values = parse_qs(urlsplit(text).query).get("t")
        if values:
            return values[0]
    return text


def tokens_in_pdf(reader: PdfReader) -> list[str]:
    """The tokens in the metadata: the information entry first, then XMP."""
    found: list[str] = []
    info = reader.metadata or {}
    value = info.get(f"/{document.TOKEN_INFO_KEY}")
    if isinstance(value, str) and _TOKEN.fullmatch(value.strip().encode("ascii", "replace")):
        found.append(value.strip())
    metadata = reader.trailer["/Root"].get("/Metadata")
    if metadata is not None:
        match = _XMP_TOKEN.search(metadata.get_object().get_data())
        if match:
            found.append(match.group(1).decode("ascii"))
    return found


# ---- printed facts --------------------------------------------------------------------


def compare_printed(text: str, claims: CertificateClaims) -> list[Problem]:
    """The printed facts that differ from ``claims`` (see the module docstring)."""
    flat = " ".join(text.split())
    values, missing = printed_values(flat, claims.level is not None)
    problems = [
        Problem("mismatch", f"the label {document.LABELS[key][1]!r} is not on the page", key)
        for key in missing
    ]
    expected = {
        "number": claims.number,
        "issued": format_date(claims.issued_at.date()),
        "name": claims.name,
        "date_of_birth": format_date(claims.date_of_birth),
        "exam_date": format_date(claims.exam_date),
        "test_centre": claims.centre,
        "total": format_score(claims.total, claims.scale_max),
        "scale": format_scale(claims.scale_min, claims.scale_max),
        "result": format_result(claims.passed),
    }
    if claims.level is not None:
        expected["level"] = claims.level
    for key, signed in expected.items():
        printed = values.get(key)
        if printed is not None and _compact(printed) != _compact(signed):
            problems.append(_mismatch(key, printed, signed))
    if "minimum" in values:
        problems += _compare_scores(values["minimum"], claims)
    header_end = flat.find(" ".join(document.LABELS["number"]))
    if header_end >= 0 and _compact(claims.exam_title) not in _compact(flat[:header_end]):
        problems.append(
            Problem("mismatch", "the exam title differs", "exam_title", signed=claims.exam_title)
        )
    return problems


def printed_values(flat: str, has_level: bool) -> tuple[dict[str, str], list[str]]:
    """The text after each label of ``FACT_ORDER`` up to the next label, and the labels
    not found (searched in order, each after the previous one)."""
    keys = [key for key in document.FACT_ORDER if has_level or key != "level"]
    spans: list[tuple[str, int, int]] = []
    missing: list[str] = []
    cursor = 0
    for key in keys:
        label = " ".join(document.LABELS[key])
        start = flat.find(label, cursor)
        if start < 0:
            missing.append(key)
            continue
        cursor = start + len(label)
        spans.append((key, start, cursor))
    values = {
        key: flat[value_start:next_start].strip()
        for (key, _start, value_start), (_key, next_start, _end) in itertools.pairwise(spans)
    }
    return values, missing


def _compare_scores(region: str, claims: CertificateClaims) -> list[Problem]:
    printed = [f"{score} / {maximum}" for score, maximum in _SCORE.findall(region)]
    problems = []
    for index, section in enumerate(claims.sections):
        signed = format_score(section.score, section.maximum)
        shown = printed[index] if index < len(printed) else None
        if shown != signed:
            problems.append(_mismatch(f"scores.{section.code}", shown, signed))
    if len(printed) > len(claims.sections):
        extra = ", ".join(printed[len(claims.sections) :])
        problems.append(
            Problem("mismatch", "more section scores printed than signed", "scores", extra)
        )
    return problems


def _mismatch(field_name: str, printed: str | None, signed: str) -> Problem:
    shown = "nothing" if printed is None else repr(printed)
    return Problem(
        "mismatch", f"{field_name}: printed {shown}, signed {signed!r}", field_name, printed, signed
    )


def _compact(text: str) -> str:
    return "".join(text.split())


def _invalid(code: str, message: str) -> VerificationResult:
    return VerificationResult(Status.INVALID, (Problem(code, message),))


__all__ = [
    "Problem",
    "Status",
    "VerificationResult",
    "compare_printed",
    "token_from_text",
    "verify_document",
    "verify_pdf",
    "verify_token",
]
