"""Registering users, checking passwords and issuing API tokens.

Services flush and raise ``AppError``s; the request that called them commits.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from babel import Locale
from flask import current_app
from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from testing_center.accounts.consent import CONSENT_VERSION
from testing_center.accounts.models import (
    ApiToken,
    CandidateProfile,
    Principal,
    Role,
    User,
    new_session_token,
)
from testing_center.errors import Conflict, InvalidInput, Unauthenticated
from testing_center.i18n import N_

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128
ID_DOCUMENT_PATTERN = re.compile(r"^[A-Z0-9]{5,32}$")
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all
PHONE_PATTERN = re.compile(r"^\+[1-9][0-9]{7,14}$")


@functools.cache
def country_codes() -> frozenset[str]:
    """ISO 3166-1 alpha-2 codes known to Babel (loaded on first use, not at import)."""
    return frozenset(code for code in Locale("en").territories if len(code) == 2 and code.isalpha())


@dataclass(frozen=True)
class CandidateDetails:
    """What a candidate gives at registration; names must match the ID document."""

    email: str
    password: str
    full_name: str
    date_of_birth: dt.date
    nationality: str
    id_document_number: str
    phone_number: str | None = None
    consent: bool = False  # the candidate accepted the consent text (``CONSENT_VERSION``)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: dt.datetime


def password_hasher() -> PasswordHasher:
    """Return the app's Argon2id hasher (costs come from the configuration)."""
    return current_app.extensions["password_hasher"]


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_id_document(number: str) -> str:
    """Upper-case and drop spaces and dashes, as ID numbers are typed in many ways."""
    return re.sub(r"[\s-]", "", number).upper()


def normalize_phone(number: str) -> str:
    """Drop spaces, dashes, dots and brackets, and read a leading 00 as +."""
    digits = re.sub(r"[\s\-.()]", "", number)
    return "+" + digits[2:] if digits.startswith("00") else digits


def check_phone(number: str | None) -> str | None:
    """Return the phone number in E.164 form (None when not given), or raise ``InvalidInput``."""
    if number is None or not number.strip():
        return None
    phone = normalize_phone(number)
    if not PHONE_PATTERN.match(phone):
        raise InvalidInput(
            N_("Enter the phone number with its country code, such as +998 90 123 45 67."),
            code="invalid_phone",
        )
    return phone


def check_password_rules(password: str, email: str) -> None:
    """Raise ``InvalidInput`` when a password is too short, too long or is the e-mail."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            N_("The password must have %(min)d to %(max)d characters."),
            code="weak_password",
            min=MIN_PASSWORD_LENGTH,
            max=MAX_PASSWORD_LENGTH,
        )
    if password.strip().lower() == email.lower():
        raise InvalidInput(N_("The password must not be the e-mail address."), code="weak_password")


def check_candidate_details(details: CandidateDetails, today: dt.date) -> CandidateDetails:
    """Return normalised details, or raise ``InvalidInput`` naming the broken rule."""
    email = normalize_email(details.email)
    check_password_rules(details.password, email)
    full_name = " ".join(details.full_name.split())
    if not 2 <= len(full_name) <= 200:
        raise InvalidInput(
            N_("Enter the full name exactly as on the ID document."), code="invalid_name"
        )
    age_years = (today - details.date_of_birth).days / 365.25
    if not 14 <= age_years <= 100:
        raise InvalidInput(N_("The date of birth is not plausible."), code="invalid_date_of_birth")
    nationality = details.nationality.strip().upper()
    if nationality not in country_codes():
        raise InvalidInput(
            N_("Nationality must be a two-letter country code such as UZ."),
            code="invalid_nationality",
        )
    document = normalize_id_document(details.id_document_number)
    if not ID_DOCUMENT_PATTERN.match(document):
        raise InvalidInput(
            N_("The ID document number must have 5-32 letters and digits."),
            code="invalid_id_document",
        )
    return CandidateDetails(
        email,
        details.password,
        full_name,
        details.date_of_birth,
        nationality,
        document,
        check_phone(details.phone_number),
        details.consent,
    )


def email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(User.email == email)) > 0


def create_user(
    session: Session, *, email: str, password: str, role: Role, now: dt.datetime
) -> User:
    """Create an account, refusing a taken e-mail address or a weak password."""
    email = normalize_email(email)
    check_password_rules(password, email)
    if email_taken(session, email):
        raise Conflict(N_("An account with this e-mail address exists."), code="email_taken")
    user = User(
        email=email,
        password_hash=password_hasher().hash(password),
        role=role.value,
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:  # a concurrent registration took the address
        raise Conflict(
            N_("An account with this e-mail address exists."), code="email_taken"
        ) from error
    return user


def register_candidate(session: Session, details: CandidateDetails, now: dt.datetime) -> User:
    """Create a candidate account with its ID profile."""
    details = check_candidate_details(details, now.date())
    user = create_user(
        session, email=details.email, password=details.password, role=Role.CANDIDATE, now=now
    )
    user.profile = CandidateProfile(
        full_name=details.full_name,
        date_of_birth=details.date_of_birth,
        nationality=details.nationality,
        id_document_number=details.id_document_number,
        phone_number=details.phone_number,
        consent_version=CONSENT_VERSION if details.consent else None,
        consented_at=now if details.consent else None,
    )
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the enabled user with these credentials or raise ``Unauthenticated``.

    An unknown address still costs one hash verification, so response time does not
    reveal which addresses have accounts.
    """
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    hasher = password_hasher()
    try:
        if user is None:
            hasher.verify(current_app.extensions["dummy_password_hash"], password)
        else:
            hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.is_enabled:
        raise Unauthenticated(
            N_("The e-mail address or password is wrong."), code="invalid_credentials"
        )
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user


def load_session_user(session: Session, session_id: str) -> User | None:
    """Return the user of a login session id (``id.token``) while its token is current."""
    user_id, _, token = session_id.partition(".")
    if not user_id.isdigit():
        return None
    user = session.get(User, int(user_id))
    if user is None or not hmac.compare_digest(user.session_token, token):
        return None
    return user


def end_all_sessions(user: User) -> None:
    """Invalidate every login session of ``user`` (cookies copied before stay useless)."""
    user.session_token = new_session_token()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, now: dt.datetime, ttl_seconds: int) -> IssuedToken:
    """Create a bearer token for ``user`` that expires ``ttl_seconds`` from ``now``."""
    token = secrets.token_urlsafe(32)
    expires_at = now + dt.timedelta(seconds=ttl_seconds)
    session.add(
        ApiToken(
            user_id=user.id, token_hash=token_digest(token), created_at=now, expires_at=expires_at
        )
    )
    session.flush()
    return IssuedToken(token, expires_at)


def token_issued_at(session: Session, token: str) -> dt.datetime | None:
    """When a bearer token was issued: the moment its holder last proved the password."""
    return session.scalar(
        select(ApiToken.created_at).where(ApiToken.token_hash == token_digest(token))
    )


def token_holder(session: Session, token: str, now: dt.datetime) -> Principal | None:
    """Return the enabled holder of a live token, or None.

    Read as one row on the session's connection, not as a ``User`` object: every save
    and state read of an exam day starts here, and loading the object through the ORM
    cost a save about a sixth of its CPU (issue 8; ``benchmarks.save_pairs``).
    """
    row = (
        session.connection()
        .execute(token_holder_query(), {"digest": token_digest(token)})
        .one_or_none()
    )
    if row is None:
        return None
    user_id, role, is_enabled, expires_at, revoked_at = row
    if revoked_at is not None or expires_at <= now or not is_enabled:
        return None
    return Principal(user_id, role)


@functools.cache
def token_holder_query() -> Select:
    """The holder and validity of a token by its digest, built once: every API request
    runs it, and building the expression anew cost more than the query itself."""
    return (
        select(User.id, User.role, User.is_enabled, ApiToken.expires_at, ApiToken.revoked_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == bindparam("digest"))
    )


def change_password(session: Session, user: User, current: str, new: str, now: dt.datetime) -> None:
    """Set a new password after checking the current one; every API token of the account
    is revoked and every login session ended, so a stolen token or cookie dies with it."""
    try:
        password_hasher().verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated(
            N_("The current password is wrong."), code="invalid_credentials"
        ) from None
    check_password_rules(new, user.email)
    user.password_hash = password_hasher().hash(new)
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    end_all_sessions(user)
    session.flush()
