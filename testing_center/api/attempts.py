"""Attempts: start, read state, save responses, finish, result."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

from flask import current_app, request, send_file, url_for
from flask_babel import get_locale
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from testing_center.access import principal, require_roles
from testing_center.accounts.models import Role
from testing_center.api.blueprint import Blueprint
from testing_center.api.fast_dump import FastJson
from testing_center.api.schemas import (
    AttemptClockSchema,
    AttemptStateSchema,
    ErrorSchema,
    PlayGrantSchema,
    ResultSchema,
    ReviewSchema,
    SaveAckSchema,
    SaveResponseSchema,
    StartAttemptSchema,
)
from testing_center.attempts.models import AttemptStatus, FinishReason
from testing_center.attempts.player import settled_attempt, settled_clock
from testing_center.attempts.presenters import (
    attempt_clock,
    attempt_result,
    attempt_review,
    attempt_state,
    seconds_until,
)
from testing_center.attempts.services import (
    SaveAck,
    Started,
    attempt_closed,
    attempt_paused,
    blueprint_of,
    current_attempt,
    finish_attempt,
    finish_section,
    granted_audio,
    owned_attempt_summary,
    record_play,
    record_save_retries,
    results_released,
    reviewable_attempt,
    save_response,
    start_practice,
    start_proctored,
    start_section,
)
from testing_center.certification.services import valid_certificate_number
from testing_center.clock import now
from testing_center.errors import Conflict, Forbidden
from testing_center.extensions import db
from testing_center.i18n import N_

blp = Blueprint("attempts", __name__, url_prefix="/api/v1/attempts", description="Taking an exam")
SECURITY = [{"bearerAuth": []}]
# The player's frequent answers, serialised as their schemas would (api/fast_dump.py).
STATE_JSON = FastJson(AttemptStateSchema)
CLOCK_JSON = FastJson(AttemptClockSchema)
SAVE_ACK_JSON = FastJson(SaveAckSchema)


def state_of(attempt_id: str) -> dict:
    """Present the requester's attempt; if a clock has run out, move it first (which
    may close the attempt).

    Without a clock step nothing is written, and the form is read as plain rows
    (``attempts.player``: 5 statements instead of 8, no ORM objects). A step loads the
    attempt as objects, and it is presented before the commit: the commit expires every
    loaded object, and presenting after it read the whole form again. Should the commit
    fail, the error is the answer.
    """
    moment, locale = now(), str(get_locale())
    settled = settled_attempt(db.session, attempt_id, principal(), moment)
    if settled is not None:
        state = attempt_state(*settled, moment, locale)
    else:
        attempt = current_attempt(db.session, attempt_id, principal(), moment, player_view=True)
        state = attempt_state(attempt, blueprint_of(attempt), moment, locale)
    db.session.commit()
    return state


@blp.route("", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.arguments(StartAttemptSchema)
@blp.response(201, AttemptStateSchema)
@blp.alt_response(200, schema=AttemptStateSchema, description="The open attempt, resumed")
@blp.alt_response(404, schema=ErrorSchema, description="No such exam")
@blp.alt_response(
    409, schema=ErrorSchema, description="Not in practice mode, not checked in, session not open"
)
@blp.doc(security=SECURITY)
def start(data):
    """Start a practice attempt (``exam_code``) or the proctored sitting of a checked-in
    booking (``booking_id``); an open attempt is resumed instead.

    A form written now is presented from the objects just written, before the commit
    expires them: reading the form back after the commit cost every start 17 more
    statements (benchmarks/README.md, starts). A form prepared at check-in, begun now,
    and a resumed attempt are read as ``GET`` reads them, in the same transaction: the
    begin commits with the read, or neither does.
    """
    moment = now()
    if "booking_id" in data:
        attempt, started = start_proctored(db.session, principal(), data["booking_id"], moment)
    else:
        attempt, started = start_practice(db.session, principal(), data["exam_code"], moment)
    if started is not Started.WRITTEN:
        return STATE_JSON.response(state_of(attempt.id), 200 if started is Started.RESUMED else 201)
    state = attempt_state(attempt, blueprint_of(attempt), moment, str(get_locale()))
    db.session.commit()
    return STATE_JSON.response(state, 201)


@blp.route("/<attempt_id>")
@require_roles(Role.CANDIDATE)
@blp.response(200, AttemptStateSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt of yours")
@blp.doc(security=SECURITY)
def get_state(attempt_id):
    """Return the attempt's state: clock, items (no keys), saved responses and flags."""
    return STATE_JSON.response(state_of(attempt_id))


@blp.route("/<attempt_id>/clock")
@require_roles(Role.CANDIDATE)
@blp.response(200, AttemptClockSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt of yours")
@blp.doc(security=SECURITY)
def get_clock(attempt_id):
    """Return the attempt's clock as the state gives it, without the exam and its items:
    status, pause, server time and the current section's countdown.

    The player asks for it when a minute has passed without an acknowledged save (which
    carries the same countdown) to keep its countdown true, and for the whole state only
    when the section or the pause has changed: were every page to ask each minute, 10,000
    candidates would make about 170 a second. Without a clock step it is two statements
    after the token, against four for the state with its 48 items; a clock step moves
    the clocks as a state read does.
    """
    moment = now()
    attempt = settled_clock(db.session, attempt_id, principal(), moment) or current_attempt(
        db.session, attempt_id, principal(), moment, player_view=True
    )
    clock = attempt_clock(attempt, moment)  # before the commit, which expires the objects
    db.session.commit()
    return CLOCK_JSON.response(clock)


@blp.route("/<attempt_id>/responses/<item_ref>", methods=["PUT"])
@require_roles(Role.CANDIDATE)
@blp.arguments(SaveResponseSchema)
@blp.response(200, SaveAckSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt or item")
@blp.alt_response(409, schema=ErrorSchema, description="Attempt finished or time over")
@blp.alt_response(422, schema=ErrorSchema, description="The response does not fit the item")
@blp.doc(security=SECURITY)
def put_response(data, attempt_id, item_ref):
    """Save one answer; a save with an older ``client_seq`` than the stored one is ignored."""
    moment = now()
    try:
        ack = save(attempt_id, item_ref, data, moment)
    except Conflict as error:
        if error.code not in SECTION_REFUSALS:
            raise
        # A section's clock may have run out without anyone reading the state since:
        # bring the sections up to date, then try once more.
        db.session.rollback()
        current_attempt(db.session, attempt_id, principal(), moment)
        db.session.commit()
        try:
            ack = save(attempt_id, item_ref, data, moment)
        except Conflict as second:
            # The catch-up may have ended the attempt; the first reason says why.
            raise (error if second.code == "attempt_closed" else second) from None
    db.session.commit()
    if data["retries"]:
        record_save_retries(db.session, attempt_id, principal(), data["retries"], moment)
        db.session.commit()
    return SAVE_ACK_JSON.response(save_ack_payload(ack, moment))


def save_ack_payload(ack: SaveAck, moment: dt.datetime) -> dict:
    """The acknowledgement with the clock of the answer's section at ``moment``: the
    player re-anchors its countdown on it instead of reading the clock."""
    return {
        **ack.__dict__,
        "server_time": moment,
        "remaining_seconds": seconds_until(ack.section_deadline_at, moment),
    }


SECTION_REFUSALS = {"section_not_open", "section_closed", "deadline_passed"}


def save(attempt_id: str, item_ref: str, data: dict, moment: dt.datetime) -> SaveAck:
    """Save one answer for the requester (the API's body fields, the server's moment)."""
    return save_response(
        db.session,
        principal(),
        attempt_id,
        item_ref,
        value=data["response"],
        client_seq=data["client_seq"],
        flagged=data["flagged"],
        now=moment,
    )


@blp.route("/<attempt_id>/finish", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.response(200, ResultSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt of yours")
@blp.doc(security=SECURITY)
def finish(attempt_id):
    """Finish the attempt and score exactly what was saved; repeating it is harmless.

    The result is presented before the commit, which would expire the attempt and make
    presenting it read the attempt again.
    """
    attempt = owned_attempt_summary(db.session, attempt_id, principal())
    if attempt.status == AttemptStatus.IN_PROGRESS and attempt.paused_at is not None:
        raise attempt_paused()
    finish_attempt(db.session, attempt, now(), FinishReason.CANDIDATE)
    result = result_of(attempt)
    db.session.commit()
    return result


def result_of(attempt) -> dict:
    """The result as the candidate may see it: a proctored sitting's scores stay hidden
    until the session's results are released; a voided attempt has none."""
    return attempt_result(
        attempt,
        blueprint_of(attempt),
        str(get_locale()),
        released=results_released(db.session, attempt),
        certificate_number=valid_certificate_number(db.session, attempt.id),
    )


@blp.route("/<attempt_id>/result")
@require_roles(Role.CANDIDATE)
@blp.response(200, ResultSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt of yours")
@blp.alt_response(409, schema=ErrorSchema, description="The attempt is still in progress")
@blp.doc(security=SECURITY)
def result(attempt_id):
    """Return the scores per section, total, scale and pass decision of a finished attempt."""
    attempt = current_attempt(db.session, attempt_id, principal(), now())
    db.session.commit()
    if attempt.status == AttemptStatus.IN_PROGRESS:
        raise Conflict(N_("The attempt is still in progress."), code="attempt_in_progress")
    return result_of(attempt)


GRANT_MAX_AGE_SECONDS = 600


class ServerClockSigner(TimestampSigner):
    """Dates signatures by the application's clock, the one tests can move."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def audio_grants() -> URLSafeTimedSerializer:
    """Signs short-lived permissions to fetch one attempt's recording."""
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt="audio-grant", signer=ServerClockSigner
    )


@blp.route("/<attempt_id>/audio/<source>/plays", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.response(200, PlayGrantSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt or recording")
@blp.alt_response(409, schema=ErrorSchema, description="Play limit reached or attempt closed")
@blp.doc(security=SECURITY)
def play(attempt_id, source):
    """Count one play of a recording (server-enforced limit) and return where to fetch it."""
    user = principal()
    counted = record_play(db.session, user, attempt_id, source, now())
    db.session.commit()
    grant = audio_grants().dumps({"a": attempt_id, "s": source, "u": user.id})
    return {
        "url": url_for("attempts.audio", attempt_id=attempt_id, source=source, grant=grant),
        "play_limit": counted.play_limit,
        "plays_used": counted.plays,
    }


@blp.route("/<attempt_id>/audio/<source>")
@require_roles(Role.CANDIDATE)
@blp.doc(
    security=SECURITY,
    parameters=[{"in": "query", "name": "grant", "required": True, "schema": {"type": "string"}}],
    responses={
        "200": {"description": "The recording (MP3)", "content": {"audio/mpeg": {}}},
        "403": {"description": "Missing, expired or foreign grant"},
    },
)
def audio(attempt_id, source):
    """Return a recording for a play counted in the last ten minutes."""
    user = principal()
    try:
        grant = audio_grants().loads(request.args.get("grant", ""), max_age=GRANT_MAX_AGE_SECONDS)
    except BadSignature as error:
        raise Forbidden(
            N_("Press play again to hear the recording."), code="invalid_grant"
        ) from error
    if grant != {"a": attempt_id, "s": source, "u": user.id}:
        raise Forbidden(N_("Press play again to hear the recording."), code="invalid_grant")
    attempt = current_attempt(db.session, attempt_id, user, now())
    db.session.commit()
    if attempt.status != AttemptStatus.IN_PROGRESS:
        raise attempt_closed()
    media = granted_audio(db.session, user, attempt_id, source)
    response = send_file(
        io.BytesIO(media.data),
        mimetype=media.mime_type,
        conditional=True,
        etag=hashlib.sha256(f"{attempt_id}:{source}".encode()).hexdigest()[:32],
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/<attempt_id>/review")
@require_roles(Role.CANDIDATE)
@blp.response(200, ReviewSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt, or no review for it")
@blp.alt_response(409, schema=ErrorSchema, description="The attempt is still in progress")
@blp.doc(security=SECURITY)
def review(attempt_id):
    """Practice review: each item with the answer given, the key and the explanation."""
    attempt = reviewable_attempt(db.session, attempt_id, principal(), now())
    db.session.commit()
    return attempt_review(attempt, blueprint_of(attempt), str(get_locale()))


@blp.route("/<attempt_id>/sections/<section_code>/finish", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.response(200, AttemptStateSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt or section")
@blp.alt_response(409, schema=ErrorSchema, description="The section is not open")
@blp.doc(security=SECURITY)
def finish_section_view(attempt_id, section_code):
    """Close an open section (no more changes to it) and move on; the last one finishes."""
    moment = now()
    attempt = finish_section(db.session, principal(), attempt_id, section_code, moment)
    db.session.commit()
    return STATE_JSON.response(
        attempt_state(attempt, blueprint_of(attempt), moment, str(get_locale()))
    )


@blp.route("/<attempt_id>/sections/<section_code>/start", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.response(200, AttemptStateSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt or section")
@blp.alt_response(409, schema=ErrorSchema, description="The section is not in its break")
@blp.doc(security=SECURITY)
def start_section_view(attempt_id, section_code):
    """End the break early and start the next section's clock now."""
    moment = now()
    attempt = start_section(db.session, principal(), attempt_id, section_code, moment)
    db.session.commit()
    return STATE_JSON.response(
        attempt_state(attempt, blueprint_of(attempt), moment, str(get_locale()))
    )
