"""Registration and API tokens."""

from __future__ import annotations

from flask import current_app

from testing_center.access import requester, require_roles
from testing_center.accounts.consent import CONSENT_VERSION, consent_sections
from testing_center.accounts.services import (
    CandidateDetails,
    change_password,
    issue_token,
    register_candidate,
)
from testing_center.accounts.throttle import sign_in
from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import (
    ConsentSchema,
    ErrorSchema,
    PasswordChangeSchema,
    RegisterSchema,
    TokenRequestSchema,
    TokenSchema,
    UserSchema,
)
from testing_center.clock import now
from testing_center.extensions import db

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Accounts and tokens")


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The e-mail address is taken")
@blp.alt_response(422, schema=ErrorSchema, description="A field breaks a rule")
def register(data):
    """Create a candidate account (name exactly as on the ID document); ``consent: true``
    records that the candidate accepted the consent text (``GET /api/v1/auth/consent``)."""
    user = register_candidate(db.session, CandidateDetails(**data), now())
    db.session.commit()
    return user


@blp.route("/consent", methods=["GET"])
@blp.response(200, ConsentSchema)
def consent():
    """The consent text to show before registering (in the Accept-Language language)."""
    return {"version": CONSENT_VERSION, "sections": consent_sections(current_app.config)}


@blp.route("/token", methods=["POST"])
@blp.arguments(TokenRequestSchema)
@blp.response(200, TokenSchema)
@blp.alt_response(401, schema=ErrorSchema, description="Wrong e-mail address or password")
@blp.alt_response(429, schema=ErrorSchema, description="Too many failed sign-ins lately")
def token(data):
    """Exchange e-mail and password for a bearer token that expires."""
    user = sign_in(db.session, data["email"], data["password"], now())
    issued = issue_token(db.session, user, now(), current_app.config["API_TOKEN_TTL_SECONDS"])
    db.session.commit()
    return {"token": issued.token, "expires_at": issued.expires_at}


@blp.route("/password", methods=["POST"])
@require_roles()
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
@blp.alt_response(401, schema=ErrorSchema, description="The current password is wrong")
@blp.alt_response(422, schema=ErrorSchema, description="The new password breaks a rule")
@blp.doc(security=[{"bearerAuth": []}])
def change_password_endpoint(data):
    """Change the password; every token and login session of the account ends."""
    change_password(db.session, requester(), data["current_password"], data["new_password"], now())
    db.session.commit()
