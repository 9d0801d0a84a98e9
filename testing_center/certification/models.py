"""Issued certificates, their verifications, employers' checks and shared result links.

A certificate stores the exact facts it signed and the signed token, so the PDF can be
rendered again at any time (bulk re-render) and always says what the token says. The
number is random; re-issuing gives a new number and marks the old one superseded.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from item_bank.db import Base


class CertificateStatus(enum.StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    SUPERSEDED = "superseded"


REVOCATION_REASONS = (
    "misconduct",  # cheating or impersonation found after the exam
    "identity",  # the holder's identity was not what the certificate says
    "scoring_error",  # withdrawn without a replacement after a scoring correction
    "administrative",
)


class Certificate(Base):
    """One issued certificate of a proctored attempt."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.VALID)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the token signs
    token: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(32))
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("candidate_photos.id"))

    superseded_by: Mapped[Certificate | None] = relationship(remote_side=[id])


class Verification(Base):
    """One verification request: which certificate (if any) and how it was asked.

    The querier is kept only as a keyed hash of their address (enough to see abuse),
    or as the employer account that checked.
    """

    __tablename__ = "certificate_verifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"), index=True)
    number: Mapped[str] = mapped_column(String(40))  # as asked (a typo shows as not found)
    outcome: Mapped[str] = mapped_column(String(16))  # valid, revoked, superseded, not_found
    channel: Mapped[str] = mapped_column(String(16))  # api, page, qr, batch, share
    client: Mapped[str | None] = mapped_column(String(64))
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    batch: Mapped[str | None] = mapped_column(String(32), index=True)


class ShareLink(Base):
    """A link a candidate gives to someone to see one result, until it expires or the
    candidate withdraws it (``withdrawn_at``)."""

    __tablename__ = "certificate_share_links"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    withdrawn_at: Mapped[dt.datetime | None]

    certificate: Mapped[Certificate] = relationship()
