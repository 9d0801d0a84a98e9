"""Users, candidate profiles and API tokens."""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from typing import NamedTuple

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from item_bank.db import Base


def new_session_token() -> str:
    return secrets.token_hex(16)


class Role(enum.StrEnum):
    """What a user may do; one role per account."""

    CANDIDATE = "candidate"
    AUTHOR = "author"
    OPERATOR = "operator"
    PROCTOR = "proctor"
    EMPLOYER = "employer"
    ADMIN = "admin"


class Principal(NamedTuple):
    """Who makes a request, as far as role checks and attempt ownership need to know:
    what a bearer token's row gives without loading the ``User`` (``access.principal``)."""

    id: int
    role: Role


class User(UserMixin, Base):
    """An account. Candidates also have a ``CandidateProfile``."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    is_enabled: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime]
    password_changed_at: Mapped[dt.datetime]
    # Part of every login session's id: changing it ends all sessions (sign-out, and later
    # password change), which a cookie-only session cannot do by itself.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    # set when the candidate had their personal data erased: the account is a tombstone
    # (disabled, e-mail scrambled) kept only so results and certificates stay verifiable
    erased_at: Mapped[dt.datetime | None]

    profile: Mapped[CandidateProfile | None] = relationship(back_populates="user")

    def get_id(self) -> str:
        """Return the session id Flask-Login stores: the user id and the session token."""
        return f"{self.id}.{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses sessions of disabled accounts
        return self.is_enabled

    @property
    def display_name(self) -> str:
        return self.profile.full_name if self.profile else self.email


class CandidateProfile(Base):
    """The candidate's identity exactly as on the ID document (checked at the test centre)."""

    __tablename__ = "candidate_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date]
    nationality: Mapped[str] = mapped_column(String(2))
    id_document_number: Mapped[str] = mapped_column(String(32), index=True)
    # optional, E.164 (+998901234567): compared across accounts by the fraud report
    phone_number: Mapped[str | None] = mapped_column(String(16), index=True)
    # the version of the consent text accepted at registration, and when (None: the
    # account was created through the API without it)
    consent_version: Mapped[str | None] = mapped_column(String(16))
    consented_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="profile")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a database leak yields no tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()
