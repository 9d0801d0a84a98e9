"""Sign-in throttling: failed attempts are counted per account and per client, and past
a limit sign-in is refused until the window ends (a temporary lockout).

Failures are committed on their own, because the failed request itself is rolled
back: a guesser must not be able to undo its own count. A correct password does not
reset the count, so a locked account stays locked for the rest of the window even for
the right password (otherwise the lock would tell a guesser when they found it).

A test centre's hall of a hundred candidates reaches us from one NAT address, so its
typing mistakes share one per-client count: addresses inside ``TRUSTED_CENTRE_NETWORKS``
get ``CENTRE_LOGIN_FAILURES_PER_CLIENT`` instead of ``LOGIN_FAILURES_PER_CLIENT``. The
per-account limit (``LOGIN_FAILURES_PER_ACCOUNT``) is the same everywhere, so a guesser
inside a centre is still stopped on every account.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from flask import current_app, request
from sqlalchemy.orm import Session

from testing_center.accounts.models import User
from testing_center.accounts.services import authenticate, normalize_email
from testing_center.errors import TooManyRequests, Unauthenticated
from testing_center.i18n import N_
from testing_center.ratelimit import client_key, count, hit


def limits(email: str) -> list[tuple[str, int]]:
    config = current_app.config
    return [
        (client_key("login-account", normalize_email(email)), config["LOGIN_FAILURES_PER_ACCOUNT"]),
        (client_key("login-client"), client_limit()),
    ]


def client_limit() -> int:
    """The allowance of failures for the requesting address: larger for a test centre."""
    config = current_app.config
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:  # no address (a test client, a Unix socket)
        return config["LOGIN_FAILURES_PER_CLIENT"]
    if any(address in network for network in config["TRUSTED_CENTRE_NETWORKS"]):
        return config["CENTRE_LOGIN_FAILURES_PER_CLIENT"]
    return config["LOGIN_FAILURES_PER_CLIENT"]


def sign_in(session: Session, email: str, password: str, now: dt.datetime) -> User:
    """Authenticate, unless this account or client has failed too often lately."""
    window = dt.timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    keys = limits(email)
    if any(count(session, key, window, now) >= limit for key, limit in keys):
        raise TooManyRequests(
            N_("Too many failed sign-ins. Try again in %(minutes)d minutes."),
            code="login_locked",
            minutes=int(window.total_seconds() // 60),
        )
    try:
        return authenticate(session, email, password)
    except Unauthenticated:
        session.rollback()
        for key, limit in keys:
            hit(session, key, limit, window, now)
        session.commit()
        raise
