"""Open Badges 3.0 export: a certificate as a W3C Verifiable Credential, signed as a JWT.

``badge_credential(facts, issuer)`` builds the ``OpenBadgeCredential`` (VC Data Model
2.0 and OB 3.0 contexts): the testing organisation as ``issuer`` (a ``Profile`` with an
id URL), ``validFrom`` the issue time, and a ``credentialSubject`` (``AchievementSubject``)
naming the holder (an ``IdentityObject`` of type ``name``, not hashed) with the
``achievement`` (the exam: name, description, ``criteria.narrative`` = the pass rule,
one ``resultDescription`` per scoring section, total and level) and the ``result``
list (scores as strings, as OB 3.0 types them; the total's ``status`` is ``Completed``
for a pass and ``Failed`` for a fail).

``sign_badge(credential, key, jwks_url, now)`` applies the OB 3.0 "JSON Web Token Proof
Format" (section 8.2, spec text checked for this module): the JWT payload is the
credential itself plus the claims ``iss`` (= ``issuer.id``), ``jti`` (= ``id``), ``sub``
(= ``credentialSubject.id``), ``nbf`` (= ``validFrom``) and ``iat`` (the export); the
JOSE header has only ``alg``, ``kid`` and ``typ``, ``typ`` MUST be ``"JWT"`` (so not
``vc+jwt``), and ``kid`` is a URI that dereferences to the public JWK:
``<jwks_url>#<kid>``. The algorithm is EdDSA
with the certificate keys (the spec's minimum is RS256; other algorithms are allowed).
``verify_badge`` checks the signature with the same JWKS and those claim equalities.

Identifiers are URNs derived from the issuer id and the certificate number (UUID v5),
so exporting a certificate twice gives the same credential.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from certificates import signing
from certificates.errors import MalformedToken
from certificates.facts import CertificateFacts, format_date, format_value

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
CREDENTIAL_TYPES = ("VerifiableCredential", "OpenBadgeCredential")
OPEN_BADGE_TYPES = ("OpenBadgeCredential", "AchievementCredential")  # the second an alias
BADGE_TOKEN_TYPE = "JWT"  # noqa: S105 - a JOSE typ; OB 3.0 8.2: if present, MUST be "JWT"


@dataclass(frozen=True)
class Issuer:
    """The testing organisation: ``id`` is a URL that identifies it (its profile page)."""

    id: str
    name: str
    url: str | None = None
    email: str | None = None

    def profile(self) -> dict[str, Any]:
        profile: dict[str, Any] = {"id": self.id, "type": ["Profile"], "name": self.name}
        if self.url:
            profile["url"] = self.url
        if self.email:
            profile["email"] = self.email
        return profile


def _urn(issuer: Issuer, *parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, '/'.join((issuer.id, *parts)))}"


def badge_credential(
    facts: CertificateFacts,
    issuer: Issuer,
    *,
    achievement_id: str | None = None,
) -> dict[str, Any]:
    """The unsigned ``OpenBadgeCredential`` of a certificate (a JSON-ready dict)."""
    achievement_id = achievement_id or _urn(issuer, "exams", facts.exam_code)
    descriptions: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for line in facts.sections:
        description_id = _urn(issuer, "exams", facts.exam_code, "sections", line.code)
        description: dict[str, Any] = {
            "id": description_id,
            "type": ["ResultDescription"],
            "name": line.title_en,
            "resultType": "ScaledScore",
            "valueMin": "0",
            "valueMax": format_value(line.maximum),
        }
        if line.minimum is not None:
            description["requiredValue"] = format_value(line.minimum)
        descriptions.append(description)
        results.append(
            {
                "type": ["Result"],
                "resultDescription": description_id,
                "value": format_value(line.score),
            }
        )
    total_id = _urn(issuer, "exams", facts.exam_code, "total")
    descriptions.append(
        {
            "id": total_id,
            "type": ["ResultDescription"],
            "name": "Total",
            "resultType": "ScaledScore",
            "valueMin": format_value(facts.scale_min),
            "valueMax": format_value(facts.scale_max),
        }
    )
    results.append(
        {
            "type": ["Result"],
            "resultDescription": total_id,
            "value": format_value(facts.total),
            "status": "Completed" if facts.passed else "Failed",
        }
    )
    if facts.level:
        level_id = _urn(issuer, "exams", facts.exam_code, "level")
        descriptions.append(
            {
                "id": level_id,
                "type": ["ResultDescription"],
                "name": "Level",
                "resultType": "PerformanceLevel",
            }
        )
        results.append({"type": ["Result"], "resultDescription": level_id, "value": facts.level})
    title = facts.exam_title_en
    if facts.exam_title_ja and facts.exam_title_ja != title:
        title = f"{title} ({facts.exam_title_ja})"
    verdict = "passed" if facts.passed else "not passed"
    return {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": _urn(issuer, "certificates", facts.number),
        "type": list(CREDENTIAL_TYPES),
        "name": f"{facts.exam_title_en}: certificate {facts.number}",
        "description": (
            f"Result certificate {facts.number}: {title}, taken at {facts.test_centre} on "
            f"{format_date(facts.exam_date)}; total {format_value(facts.total)} on "
            f"{format_value(facts.scale_min)}-{format_value(facts.scale_max)}, {verdict}."
        ),
        "issuer": issuer.profile(),
        "validFrom": signing.utc_iso(facts.issued_at),
        "credentialSubject": {
            "id": _urn(issuer, "certificates", facts.number, "holder"),
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": "name",
                    "hashed": False,
                    "identityHash": facts.full_name,
                }
            ],
            "achievement": {
                "id": achievement_id,
                "type": ["Achievement"],
                "achievementType": "Assessment",
                "name": title,
                "description": (
                    f"A proctored {facts.exam_title_en} taken at a test centre, scored "
                    f"{format_value(facts.scale_min)}-{format_value(facts.scale_max)}."
                ),
                "criteria": {"narrative": facts.pass_rule_en},
                "resultDescription": descriptions,
            },
            "result": results,
        },
    }


def sign_badge(
    credential: Mapping[str, Any], key: signing.Key, jwks_url: str, now: dt.datetime
) -> str:
    """The credential as an OB 3.0 JWT (compact JWS): the credential plus iss/jti/sub/nbf
    and ``iat``, the moment of this export.

    ``iat`` is what the key's signing window is checked against: the certificate may be
    older than every key that may sign today (keys rotate), and a badge exported after a
    rotation is signed by today's key, not refused.
    """
    valid_from = signing.parse_utc(credential["validFrom"])
    payload = {
        **credential,
        "iss": credential["issuer"]["id"],
        "jti": credential["id"],
        "sub": credential["credentialSubject"]["id"],
        "nbf": signing.numeric_date(valid_from),
        "iat": signing.numeric_date(now),
    }
    if "validUntil" in credential:
        payload["exp"] = signing.numeric_date(signing.parse_utc(credential["validUntil"]))
    return signing.sign(payload, key, typ=BADGE_TOKEN_TYPE, kid=f"{jwks_url}#{key.kid}")


def verify_badge(
    token: str,
    keys: signing.KeyRing | Mapping[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    """Verify an OB 3.0 JWT and return the credential (without the JWT claims).

    Raises a ``TokenError``: the signature and key checks of ``signing.verify``, then
    ``MalformedToken`` when a claim disagrees with the credential (OB 3.0 8.2.6) or the
    credential has expired.
    """
    verified = signing.verify(token, keys, now, typ=BADGE_TOKEN_TYPE)
    payload = verified.payload
    claims = {"iss", "jti", "sub", "nbf", "exp", "iat"}
    credential = {k: v for k, v in payload.items() if k not in claims}
    try:
        expected = {
            "iss": credential["issuer"]["id"],
            "jti": credential["id"],
            "sub": credential["credentialSubject"]["id"],
            "nbf": signing.numeric_date(signing.parse_utc(credential["validFrom"])),
        }
        if "validUntil" in credential:
            expected["exp"] = signing.numeric_date(signing.parse_utc(credential["validUntil"]))
        types = set(credential["type"])
        if "VerifiableCredential" not in types or not types & set(OPEN_BADGE_TYPES):
            raise MalformedToken("the credential is not an OpenBadgeCredential")
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedToken(f"not an Open Badges credential: {error}") from error
    for claim, value in expected.items():
        if payload.get(claim) != value:
            raise MalformedToken(f"JWT claim {claim} does not match the credential")
    if "exp" in payload and signing.from_numeric_date(payload["exp"]) <= now:
        raise MalformedToken("the credential has expired")
    return credential
