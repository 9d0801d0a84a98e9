"""Who is asking, and may they: the one place where roles are checked.

Pages authenticate with the session cookie (Flask-Login). API clients send
``Authorization: Bearer <token>``; the exam page calls the API with its session cookie
and a CSRF header instead. ``principal()`` resolves either into an id and a role, which
is all ``require_roles`` and the attempt API need; ``requester()`` into the ``User``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request, session
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from testing_center.accounts.models import Principal, Role, User
from testing_center.accounts.services import token_holder, token_issued_at
from testing_center.clock import now
from testing_center.errors import Forbidden, Unauthenticated
from testing_center.extensions import csrf, db
from testing_center.i18n import N_

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bearer_token() -> str | None:
    """Return the bearer token of the request, if it sends one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal() -> Principal | None:
    """Return who makes this request, or None when anonymous.

    A request that names a bearer token is judged by that token alone, read as a row
    (``token_holder``) without loading the user. A cookie session must also prove, for
    unsafe methods, that it comes from our own page (CSRF).
    """
    if "principal" in g:
        return g.principal
    if request.headers.get("Authorization"):
        token = bearer_token()
        found = token_holder(db.session, token, now()) if token else None
        if found is None:
            raise Unauthenticated(
                N_("The token is missing, expired or revoked."), code="invalid_token"
            )
    else:
        user = requester()
        found = None if user is None else Principal(user.id, user.role)
    g.principal = found
    return found


def requester() -> User | None:
    """Return the user making this request, or None when anonymous (see ``principal``)."""
    if "requester" not in g:
        if request.headers.get("Authorization"):
            g.requester = db.session.get(User, principal().id)
        else:
            g.requester = cookie_user()
    return g.requester


def cookie_user() -> User | None:
    """The user of the cookie session, once its unsafe requests have passed CSRF."""
    if not current_user.is_authenticated:
        return None
    if request.method in UNSAFE_METHODS and current_app.config["WTF_CSRF_ENABLED"]:
        try:
            csrf.protect()
        except CSRFError as error:
            raise Forbidden(
                N_("The CSRF token is missing or wrong; reload the page."), code="csrf_failed"
            ) from error
    return current_user._get_current_object()


def check_role(user: Principal | User | None, roles: tuple[Role, ...]) -> None:
    """Raise unless ``user`` may act in one of ``roles``."""
    if user is None:
        raise Unauthenticated(N_("Sign in first."))
    if roles and user.role not in roles:
        raise Forbidden(N_("Your account's role may not do this."))


def require_roles(*roles: Role) -> Callable[[F], F]:
    """Guard a view: the requester must be signed in and, if roles are given, hold one."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            check_role(principal(), roles)
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def signed_in_at() -> dt.datetime | None:
    """When the requester last gave their password: the token's issue time, or the
    moment the page session signed in."""
    token = bearer_token()
    if token:
        return token_issued_at(db.session, token)
    stamp = session.get("signed_in_at")
    return dt.datetime.fromisoformat(stamp) if stamp else None


def check_recent_sign_in() -> None:
    """Refuse an action that cannot be undone (revoking a certificate, applying a
    re-scoring, cancelling a session) unless the password was given within
    ``REAUTH_SECONDS``, so a session left open on a test-centre computer cannot do it."""
    at = signed_in_at()
    limit = dt.timedelta(seconds=current_app.config["REAUTH_SECONDS"])
    if at is None or now() - at > limit:
        raise Unauthenticated(
            N_("Sign in again to confirm this action."), code="reauthentication_required"
        )


def require_recent_sign_in(view: F) -> F:
    """Guard a view with ``check_recent_sign_in``."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_recent_sign_in()
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]
