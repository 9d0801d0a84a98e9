"""The signed claims of a certificate: what the token in the QR code and the PDF carries.

The payload is kept short because it rides in a QR code (short member names, the exam
code and English title only, section codes not titles); ``CertificateClaims`` gives the
members their full names. Members (version 1):

====== ================================================= ==================================
member meaning                                            example
====== ================================================= ==================================
``v``  claims format version                             ``1``
``no`` certificate number                                ``"JP-4N7QX-B2K9M-TW3D8"``
``nm`` full name as on the ID document                   ``"Gʻulomova Oʻgʻiloy"``
``dob`` date of birth                                    ``"1999-01-31"``
``ex`` exam (template) code                              ``"jft-basic"``
``ti`` exam title (English)                              ``"JFT-Basic style test"``
``dt`` exam date                                         ``"2026-12-03"``
``ctr`` test centre                                      ``"Tashkent Testing Centre"``
``sc`` sections: ``[code, score, maximum]`` in order     ``[["listening", 45, 60], ...]``
``tot`` total and its scale: ``[total, min, max]``       ``[215, 10, 250]``
``res`` ``"pass"`` or ``"fail"``                         ``"pass"``
``lvl`` band / CEFR label, absent when none              ``"A2.2"``
``iat`` issued at (JWT NumericDate, seconds, UTC)        ``1796893200``
====== ================================================= ==================================

Numbers are integers when whole, else rounded to one decimal, exactly as printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certificates import signing
from certificates.errors import MalformedToken
from certificates.facts import CertificateFacts, plain_number

CLAIMS_VERSION = 1
RESULTS = {True: "pass", False: "fail"}


@dataclass(frozen=True)
class SectionResult:
    """A signed section score: the template's section code, score and maximum."""

    code: str
    score: int | float
    maximum: int | float


@dataclass(frozen=True)
class CertificateClaims:
    """The facts a certificate token signs (see the module docstring for the payload)."""

    number: str
    name: str
    date_of_birth: dt.date
    exam_code: str
    exam_title: str
    exam_date: dt.date
    centre: str
    sections: tuple[SectionResult, ...]
    total: int | float
    scale_min: int | float
    scale_max: int | float
    passed: bool
    issued_at: dt.datetime  # whole seconds, UTC
    level: str | None = None

    @classmethod
    def from_facts(cls, facts: CertificateFacts) -> CertificateClaims:
        """The claims of a certificate, from the very facts its PDF prints."""
        signing.numeric_date(facts.issued_at)  # refuses a naive time
        return cls(
            number=facts.number,
            name=facts.full_name,
            date_of_birth=facts.date_of_birth,
            exam_code=facts.exam_code,
            exam_title=facts.exam_title_en,
            exam_date=facts.exam_date,
            centre=facts.test_centre,
            sections=tuple(
                SectionResult(s.code, plain_number(s.score), plain_number(s.maximum))
                for s in facts.sections
            ),
            total=plain_number(facts.total),
            scale_min=plain_number(facts.scale_min),
            scale_max=plain_number(facts.scale_max),
            passed=facts.passed,
            issued_at=facts.issued_at.astimezone(dt.UTC).replace(microsecond=0),
            level=facts.level,
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "v": CLAIMS_VERSION,
            "no": self.number,
            "nm": self.name,
            "dob": self.date_of_birth.isoformat(),
            "ex": self.exam_code,
            "ti": self.exam_title,
            "dt": self.exam_date.isoformat(),
            "ctr": self.centre,
            "sc": [[s.code, s.score, s.maximum] for s in self.sections],
            "tot": [self.total, self.scale_min, self.scale_max],
            "res": RESULTS[self.passed],
            "iat": signing.numeric_date(self.issued_at),
        }
        if self.level is not None:
            payload["lvl"] = self.level
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CertificateClaims:
        """Read a verified payload; ``MalformedToken`` names the member that is wrong."""
        if payload.get("v") != CLAIMS_VERSION:
            raise MalformedToken(f"claims version {payload.get('v')!r} is not {CLAIMS_VERSION}")
        try:
            sections = tuple(_section(entry) for entry in _get(payload, "sc", list))
            total, low, high = (_number(value) for value in _get(payload, "tot", list))
            result = _get(payload, "res", str)
            if result not in RESULTS.values():
                raise ValueError("res is pass or fail")
            level = payload.get("lvl")
            if level is not None and not isinstance(level, str):
                raise ValueError("lvl is a string")
            return cls(
                number=_get(payload, "no", str),
                name=_get(payload, "nm", str),
                date_of_birth=dt.date.fromisoformat(_get(payload, "dob", str)),
                exam_code=_get(payload, "ex", str),
                exam_title=_get(payload, "ti", str),
                exam_date=dt.date.fromisoformat(_get(payload, "dt", str)),
                centre=_get(payload, "ctr", str),
                sections=sections,
                total=total,
                scale_min=low,
                scale_max=high,
                passed=result == RESULTS[True],
                issued_at=signing.from_numeric_date(payload.get("iat")),
                level=level,
            )
        except (TypeError, ValueError) as error:
            raise MalformedToken(f"certificate claims: {error}") from error


def _get(payload: Mapping[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"{name} is missing or not a {kind.__name__}")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return value


def _section(entry: Any) -> SectionResult:
    if not isinstance(entry, list) or len(entry) != 3 or not isinstance(entry[0], str):
        raise ValueError("a section is [code, score, maximum]")
    return SectionResult(entry[0], _number(entry[1]), _number(entry[2]))


def sign_certificate(facts: CertificateFacts, key: signing.Key) -> str:
    """The token of a certificate: its claims signed with ``key`` (``typ`` ``cert+jwt``)."""
    return signing.sign(CertificateClaims.from_facts(facts).to_payload(), key)


def verify_certificate_token(
    token: str,
    keys: signing.KeyRing | Mapping[str, Any],
    now: dt.datetime,
) -> tuple[CertificateClaims, signing.VerifiedToken]:
    """Verify a certificate token and read its claims (raises a ``TokenError``)."""
    verified = signing.verify(token, keys, now)
    return CertificateClaims.from_payload(verified.payload), verified
