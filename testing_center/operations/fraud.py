"""Fraud signals for operators: the patterns behind the impersonation rings of 2023
(FIELD.md: shared ID and phone numbers across candidates, a near-100% pass rate at one
venue), and copying between neighbours.

Each signal names the records concerned by account id, admission number, session id or
photo id, masks the ID and phone numbers it groups by (last four characters), and says
why it was raised. A signal is a reason to look, never a verdict.

Duplicate identities
    The same ID document number (letters and digits, upper case) or phone number (E.164)
    on more than one account; the same face photo on more than one account: check-in
    photos whose difference hashes (``imagehash``) lie within ``FRAUD_PHOTO_MAX_DISTANCE``
    bits of each other, grouped transitively.

Answer similarity between neighbours
    Neighbours are seats of one session in the same row with numbers one apart: seat
    labels are a row of letters and a number ("A1", "b-12", "C 3"); "A1"-"A2" are
    neighbours, "A1"-"B1" and "A1"-"A3" are not, and unlabelled seats are not compared.
    For a pair, only items both answered wrongly count (identical right answers say
    nothing). For each such item, ``p_i`` is the chance that two independent wrong
    answers agree: with ``c_v`` the wrong answers ``v`` of the other candidates of the
    exam in the window and ``D`` the wrong answers possible (the distractors of a
    single-choice item, plus every wrong answer seen), ``p_i = sum_v ((c_v + 1) /
    (N + |D|))^2`` (add-one smoothing; an item with one possible wrong answer, like
    true/false, gives ``p_i = 1`` and no evidence). The number of identical wrong answers
    then follows a Poisson-binomial law under independence; its upper tail
    ``P(X >= identical)`` is the pair's p-value (exact, by convolution). A pair is
    flagged with at least ``MIN_IDENTICAL_WRONG`` identical wrong answers and a p-value
    at most ``FRAUD_ALPHA``; the Bonferroni-adjusted value (times the pairs tested) is
    shown beside it.

Anomalous pass rates
    Per exam (template code), each session and each centre with at least
    ``FRAUD_MIN_ATTEMPTS`` finished proctored attempts is compared with the rest of
    that exam's attempts in the window (every centre): with ``k`` passes of ``n`` and
    the others' rate ``p0 = (passes + 0.5) / (attempts + 1)``, the p-value is the
    binomial upper tail ``P(X >= k | n, p0)`` (``scipy.stats.binom.sf``). Rates above
    ``p0`` with a p-value at most ``FRAUD_ALPHA`` are flagged.

An operator tied to centres sees the signals that concern those centres (a duplicate
identity when one of the accounts booked there), with admission numbers and photos of
those centres only; baselines are always computed over every centre.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam_templates.models import ExamTemplate
from item_bank.models import ItemVersion
from item_bank.types import ITEM_TYPES
from testing_center.accounts.models import CandidateProfile, User
from testing_center.attempts.models import Attempt, AttemptItem, AttemptStatus, Response
from testing_center.i18n import N_
from testing_center.operations import imagehash
from testing_center.operations.models import Booking, CandidatePhoto, Centre, ExamSession
from testing_center.operations.services import centre_ids_of

DEFAULT_WINDOW_DAYS = 90
MIN_IDENTICAL_WRONG = 3
SEAT_PATTERN = re.compile(r"^([A-Z]+)[\s\-]*([0-9]+)$")
CHUNK = 500  # ids per IN (...) list

KINDS = (
    "duplicate_id_document",
    "duplicate_phone",
    "duplicate_photo",
    "similar_answers",
    "session_pass_rate",
    "centre_pass_rate",
)
REASONS = {
    "duplicate_id_document": N_(
        "The ID document number ending %(ending)s is on %(count)d accounts."
    ),
    "duplicate_phone": N_("The phone number ending %(ending)s is on %(count)d accounts."),
    "duplicate_photo": N_(
        "Check-in photos of %(count)d accounts match (at most %(bits)d of 64 bits differ)."
    ),
    "similar_answers": N_(
        "Seats %(seat_a)s and %(seat_b)s gave %(identical)d identical wrong answers on the "
        "%(both_wrong)d items both got wrong; by chance about %(expected).1f "
        "(p = %(p_value).2g)."
    ),
    "session_pass_rate": N_(
        "%(passed)d of %(attempts)d passed (%(rate).0f%%) against %(baseline).0f%% for "
        "%(exam)s elsewhere (p = %(p_value).2g)."
    ),
    "centre_pass_rate": N_(
        "%(passed)d of %(attempts)d passed (%(rate).0f%%) against %(baseline).0f%% for "
        "%(exam)s at the other centres (p = %(p_value).2g)."
    ),
}


@dataclass(frozen=True)
class Signal:
    """One thing worth a look: what kind, which records, and the numbers behind it."""

    kind: str
    details: dict[str, Any]
    accounts: tuple[int, ...] = ()
    admission_numbers: tuple[str, ...] = ()
    sessions: tuple[int, ...] = ()
    photos: tuple[int, ...] = ()
    centres: tuple[str, ...] = ()

    @property
    def why(self) -> str:
        return gettext(REASONS[self.kind], **self.details)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "why": self.why,
            "accounts": list(self.accounts),
            "admission_numbers": list(self.admission_numbers),
            "sessions": list(self.sessions),
            "photos": list(self.photos),
            "centres": list(self.centres),
            "details": self.details,
        }


@dataclass(frozen=True)
class FraudReport:
    generated_at: dt.datetime
    since: dt.datetime
    parameters: dict[str, Any]
    signals: list[Signal] = field(default_factory=list)
    tested: dict[str, int] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Signal]:
        return [signal for signal in self.signals if signal.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "since": self.since,
            "parameters": self.parameters,
            "tested": self.tested,
            "signals": [signal.as_dict() for signal in self.signals],
        }


# ---- helpers ----------------------------------------------------------------------------


def mask(text: str) -> str:
    """The last four characters, the rest hidden: enough to tell groups apart."""
    return "…" + text[-4:]


def canonical(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


def chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def bookings_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
    """Per account, its bookings as (admission number, centre id), oldest first."""
    found: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for part in chunks(set(user_ids)):
        for user_id, number, centre_id in session.execute(
            select(Booking.user_id, Booking.admission_number, ExamSession.centre_id)
            .join(ExamSession, ExamSession.id == Booking.session_id)
            .where(Booking.user_id.in_(part))
            .order_by(Booking.id)
        ):
            found[user_id].append((number, centre_id))
    return found


def visible_numbers(
    accounts: Iterable[int],
    bookings: Mapping[int, list[tuple[str, int]]],
    allowed: set[int] | None,
) -> tuple[str, ...] | None:
    """The admission numbers of ``accounts`` at the centres the viewer sees; None when no
    booking of theirs is there (the viewer does not see the group at all)."""
    numbers = [
        number
        for account in accounts
        for number, centre_id in bookings.get(account, [])
        if allowed is None or centre_id in allowed
    ]
    if allowed is not None and not numbers:
        return None
    return tuple(numbers)


# ---- (a) duplicate identities -----------------------------------------------------------


def duplicate_identities(session: Session, allowed: set[int] | None) -> list[Signal]:
    """Accounts sharing an ID document number or a phone number."""
    by_document: dict[str, set[int]] = defaultdict(set)
    by_phone: dict[str, set[int]] = defaultdict(set)
    for user_id, document, phone in session.execute(
        select(
            CandidateProfile.user_id,
            CandidateProfile.id_document_number,
            CandidateProfile.phone_number,
        )
    ):
        by_document[canonical(document)].add(user_id)
        if phone:
            by_phone[canonical(phone)].add(user_id)
    groups = [
        ("duplicate_id_document", key, accounts)
        for key, accounts in by_document.items()
        if len(accounts) > 1 and key
    ] + [
        ("duplicate_phone", key, accounts)
        for key, accounts in by_phone.items()
        if len(accounts) > 1
    ]
    bookings = bookings_by_user(session, {a for *_, accounts in groups for a in accounts})
    signals = []
    for kind, key, accounts in groups:
        ordered = tuple(sorted(accounts))
        numbers = visible_numbers(ordered, bookings, allowed)
        if numbers is None:
            continue
        signals.append(
            Signal(
                kind,
                {"ending": mask(key), "count": len(ordered)},
                accounts=ordered,
                admission_numbers=numbers,
            )
        )
    return sorted(signals, key=lambda s: (s.kind, -len(s.accounts), s.accounts))


def duplicate_photos(session: Session, allowed: set[int] | None, max_distance: int) -> list[Signal]:
    """Accounts whose check-in photos lie within ``max_distance`` bits of each other."""
    rows = session.execute(
        select(
            CandidatePhoto.id,
            CandidatePhoto.user_id,
            CandidatePhoto.image_hash,
            Booking.admission_number,
            ExamSession.centre_id,
        )
        .outerjoin(Booking, Booking.id == CandidatePhoto.booking_id)
        .outerjoin(ExamSession, ExamSession.id == Booking.session_id)
        .where(CandidatePhoto.image_hash.is_not(None))
    ).all()
    photos = {row.id: row for row in rows if imagehash.is_comparable(row.image_hash)}
    parent = {photo_id: photo_id for photo_id in photos}

    def root(photo_id: int) -> int:
        while parent[photo_id] != photo_id:
            parent[photo_id] = parent[parent[photo_id]]
            photo_id = parent[photo_id]
        return photo_id

    widest: dict[int, int] = defaultdict(int)
    pairs = imagehash.near_pairs(
        {photo_id: row.image_hash for photo_id, row in photos.items()}, max_distance
    )
    for first, second, _bits in pairs:
        parent[root(first)] = root(second)
    for first, _second, bits in pairs:
        widest[root(first)] = max(widest[root(first)], bits)
    components: dict[int, list[Any]] = defaultdict(list)
    for photo_id in photos:
        components[root(photo_id)].append(photos[photo_id])
    signals = []
    for top, members in components.items():
        accounts = tuple(sorted({row.user_id for row in members}))
        if len(accounts) < 2:
            continue
        shown = [row for row in members if allowed is None or row.centre_id in allowed]
        if not shown:
            continue
        signals.append(
            Signal(
                "duplicate_photo",
                {"count": len(accounts), "bits": widest[top]},
                accounts=accounts,
                admission_numbers=tuple(
                    row.admission_number for row in shown if row.admission_number
                ),
                photos=tuple(sorted(row.id for row in shown)),
            )
        )
    return sorted(signals, key=lambda s: (-len(s.accounts), s.accounts))


# ---- sittings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sitting:
    """A finished proctored attempt and where it was sat."""

    attempt_id: str
    user_id: int
    admission_number: str
    seat: str | None
    session_id: int
    centre_id: int
    centre_code: str
    exam: str
    passed: bool


def sittings(session: Session, since: dt.datetime) -> list[Sitting]:
    """Finished proctored attempts of sessions that started since ``since`` (all centres)."""
    rows = session.execute(
        select(
            Attempt.id,
            Attempt.user_id,
            Booking.admission_number,
            Booking.seat,
            ExamSession.id,
            ExamSession.centre_id,
            Centre.code,
            ExamTemplate.code,
            Attempt.result,
        )
        .join(Booking, Booking.id == Attempt.booking_id)
        .join(ExamSession, ExamSession.id == Booking.session_id)
        .join(Centre, Centre.id == ExamSession.centre_id)
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .where(
            Attempt.status == AttemptStatus.FINISHED,
            Attempt.result.is_not(None),
            ExamSession.starts_at >= since,
        )
        .order_by(ExamSession.id, Booking.id)
    ).all()
    return [Sitting(*head, bool((result or {}).get("passed"))) for *head, result in rows]


# ---- (b) answer similarity between neighbouring seats ---------------------------------


def seat_position(label: str | None) -> tuple[str, int] | None:
    """``("A", 12)`` for "A12", "a-12" or "A 12"; None for anything else."""
    if not label:
        return None
    found = SEAT_PATTERN.match(label.strip().upper())
    return (found[1], int(found[2])) if found else None


def neighbours(seated: list[Sitting]) -> list[tuple[Sitting, Sitting]]:
    """Pairs of one session in the same row with seat numbers one apart."""
    by_place = {}
    for sitting in seated:
        place = seat_position(sitting.seat)
        if place is not None:
            by_place[place] = sitting
    pairs = []
    for (row, number), sitting in sorted(by_place.items()):
        right = by_place.get((row, number + 1))
        if right is not None:
            pairs.append((sitting, right))
    return pairs


def canonical_answer(value: Any) -> str:
    """An answer as a string that compares equal exactly when the answers are equal."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def poisson_binomial_tail(at_least: int, probabilities: list[float]) -> float:
    """``P(X >= at_least)`` for a sum of independent Bernoulli(p_i), by convolution."""
    distribution = [1.0]
    for p in probabilities:
        step = [0.0] * (len(distribution) + 1)
        for count, mass in enumerate(distribution):
            step[count] += mass * (1 - p)
            step[count + 1] += mass * p
        distribution = step
    return min(1.0, max(0.0, sum(distribution[at_least:])))


@dataclass(frozen=True)
class Graded:
    """One answered item of an attempt: the answer as a canonical string, and whether
    it earned full credit."""

    answer: str
    correct: bool


def graded_answers(session: Session, attempt_ids: list[str]) -> dict[str, dict[int, Graded]]:
    """Per attempt, per item version, the answer given and whether it was right (with the
    scoring corrections in force; dropped and credited items are left out)."""
    from testing_center.psychometrics.services import scoring_inputs

    rows = []
    for part in chunks(attempt_ids):
        rows += session.execute(
            select(AttemptItem.attempt_id, AttemptItem.item_version_id, Response.value)
            .join(Response, Response.attempt_item_id == AttemptItem.id)
            .where(AttemptItem.attempt_id.in_(part), Response.value.is_not(None))
        ).all()
    versions = {row.item_version_id for row in rows}
    keys = {}
    for part in chunks(versions):
        for version_id, item_type, key in session.execute(
            select(ItemVersion.id, ItemVersion.item_type, ItemVersion.answer_key).where(
                ItemVersion.id.in_(part)
            )
        ):
            keys[version_id] = (item_type, key)
    overrides = scoring_inputs(session, versions)
    graded: dict[str, dict[int, Graded]] = defaultdict(dict)
    for attempt_id, version_id, value in rows:
        if value is None:  # an answer taken back
            continue
        item_type, key = keys[version_id]
        override = overrides.get(version_id)
        if override is not None:
            if override.dropped or override.full_credit:
                continue
            key = override.answer_key
        correct = ITEM_TYPES[item_type].grade(key, value) >= 1.0
        graded[attempt_id][version_id] = Graded(canonical_answer(value), correct)
    return graded


def choice_distractors(session: Session, version_ids: set[int]) -> dict[int, set[str]]:
    """For single-choice items, the wrong options (as canonical answers)."""
    found = {}
    for part in chunks(version_ids):
        for version_id, item_type, key, content in session.execute(
            select(
                ItemVersion.id, ItemVersion.item_type, ItemVersion.answer_key, ItemVersion.content
            ).where(ItemVersion.id.in_(part), ItemVersion.item_type == "single_choice")
        ):
            options = ITEM_TYPES[item_type].option_ids(content)
            found[version_id] = {canonical_answer(o) for o in options if o != key}
    return found


def match_probability(wrong: Counter[str], possible: set[str]) -> float:
    """The chance that two independent wrong answers agree (add-one smoothing)."""
    if len(possible) <= 1:
        return 1.0
    total = sum(wrong.values()) + len(possible)
    return sum(((wrong.get(v, 0) + 1) / total) ** 2 for v in possible)


def similar_answers(
    session: Session, all_sittings: list[Sitting], allowed: set[int] | None, alpha: float
) -> tuple[list[Signal], int]:
    """Neighbouring seats with improbably many identical wrong answers; also returns how
    many pairs were tested."""
    by_session: dict[int, list[Sitting]] = defaultdict(list)
    for sitting in all_sittings:
        by_session[sitting.session_id].append(sitting)
    pairs = [
        pair
        for seated in by_session.values()
        if allowed is None or seated[0].centre_id in allowed
        for pair in neighbours(seated)
    ]
    if not pairs:
        return [], 0
    exams = {a.exam for a, _ in pairs}
    pool = [s for s in all_sittings if s.exam in exams]
    answers = graded_answers(session, [s.attempt_id for s in pool])
    wrong_by_item: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for sitting in pool:
        for version_id, graded in answers.get(sitting.attempt_id, {}).items():
            if not graded.correct:
                wrong_by_item[(sitting.exam, version_id)][graded.answer] += 1
    distractors = choice_distractors(session, {v for _, v in wrong_by_item})
    found = []
    for first, second in pairs:
        mine, theirs = answers.get(first.attempt_id, {}), answers.get(second.attempt_id, {})
        both_wrong = [
            v for v in mine.keys() & theirs.keys() if not mine[v].correct and not theirs[v].correct
        ]
        identical = [v for v in both_wrong if mine[v].answer == theirs[v].answer]
        if len(identical) < MIN_IDENTICAL_WRONG:
            continue
        probabilities = []
        for version_id in both_wrong:
            others = wrong_by_item[(first.exam, version_id)].copy()
            others[mine[version_id].answer] -= 1
            others[theirs[version_id].answer] -= 1
            others = +others  # drop the pair's own answers (and zero counts)
            possible = set(others) | distractors.get(version_id, set())
            possible |= {mine[version_id].answer, theirs[version_id].answer}
            probabilities.append(match_probability(others, possible))
        p_value = poisson_binomial_tail(len(identical), probabilities)
        if p_value > alpha:
            continue
        found.append(
            Signal(
                "similar_answers",
                {
                    "seat_a": first.seat,
                    "seat_b": second.seat,
                    "identical": len(identical),
                    "both_wrong": len(both_wrong),
                    "expected": round(sum(probabilities), 2),
                    "p_value": p_value,
                    "p_adjusted": min(1.0, p_value * len(pairs)),
                    "exam": first.exam,
                },
                accounts=(first.user_id, second.user_id),
                admission_numbers=(first.admission_number, second.admission_number),
                sessions=(first.session_id,),
            )
        )
    return sorted(found, key=lambda s: s.details["p_value"]), len(pairs)


# ---- (c) anomalous pass rates -------------------------------------------------------------


def pass_rate_signal(
    kind: str,
    group: list[Sitting],
    rest_passed: int,
    rest_total: int,
    min_attempts: int,
    alpha: float,
    **records: Any,
) -> Signal | None:
    """Test one group's pass rate against the rest of its exam's; a Signal when it is
    improbably high."""
    from scipy.stats import binom

    attempts, passed = len(group), sum(s.passed for s in group)
    if attempts < min_attempts or rest_total < min_attempts:
        return None
    baseline = (rest_passed + 0.5) / (rest_total + 1)
    if passed / attempts <= baseline:
        return None
    p_value = float(binom.sf(passed - 1, attempts, baseline))
    if p_value > alpha:
        return None
    return Signal(
        kind,
        {
            "exam": group[0].exam,
            "passed": passed,
            "attempts": attempts,
            "rate": 100 * passed / attempts,
            "baseline": 100 * baseline,
            "p_value": p_value,
        },
        **records,
    )


def pass_rates(
    all_sittings: list[Sitting], allowed: set[int] | None, min_attempts: int, alpha: float
) -> tuple[list[Signal], int]:
    """Sessions and centres whose pass rate is far above the rest of the same exam's;
    also returns how many groups were tested."""
    by_exam: dict[str, list[Sitting]] = defaultdict(list)
    for sitting in all_sittings:
        by_exam[sitting.exam].append(sitting)
    found, tested = [], 0
    for group_of in ("session", "centre"):
        for _exam, exam_sittings in sorted(by_exam.items()):
            total, passed = len(exam_sittings), sum(s.passed for s in exam_sittings)
            groups: dict[int, list[Sitting]] = defaultdict(list)
            for sitting in exam_sittings:
                key = sitting.session_id if group_of == "session" else sitting.centre_id
                groups[key].append(sitting)
            for group in groups.values():
                if allowed is not None and group[0].centre_id not in allowed:
                    continue
                tested += len(group) >= min_attempts
                group_passed = sum(s.passed for s in group)
                records = (
                    {
                        "sessions": (group[0].session_id,),
                        "centres": (group[0].centre_code,),
                    }
                    if group_of == "session"
                    else {"centres": (group[0].centre_code,)}
                )
                signal = pass_rate_signal(
                    f"{group_of}_pass_rate",
                    group,
                    passed - group_passed,
                    total - len(group),
                    min_attempts,
                    alpha,
                    **records,
                )
                if signal is not None:
                    found.append(signal)
    return sorted(
        found, key=lambda s: (s.kind != "session_pass_rate", s.details["p_value"])
    ), tested


# ---- the report -------------------------------------------------------------------------


def fraud_report(
    session: Session,
    viewer: User,
    now: dt.datetime,
    config: Mapping[str, Any],
    days: int = DEFAULT_WINDOW_DAYS,
) -> FraudReport:
    """Every signal the viewer may see: duplicate identities over all time; answer
    similarity and pass rates over sessions that started in the last ``days`` days."""
    allowed = centre_ids_of(session, viewer)
    since = now - dt.timedelta(days=days)
    alpha = float(config["FRAUD_ALPHA"])
    min_attempts = int(config["FRAUD_MIN_ATTEMPTS"])
    max_distance = int(config["FRAUD_PHOTO_MAX_DISTANCE"])
    seated = sittings(session, since)
    similar, pairs_tested = similar_answers(session, seated, allowed, alpha)
    rates, groups_tested = pass_rates(seated, allowed, min_attempts, alpha)
    profiles = session.scalar(select(func.count()).select_from(CandidateProfile))
    return FraudReport(
        generated_at=now,
        since=since,
        parameters={
            "days": days,
            "alpha": alpha,
            "min_attempts": min_attempts,
            "photo_max_distance": max_distance,
            "min_identical_wrong": MIN_IDENTICAL_WRONG,
        },
        signals=duplicate_identities(session, allowed)
        + duplicate_photos(session, allowed, max_distance)
        + similar
        + rates,
        tested={
            "profiles": profiles,
            "neighbour_pairs": pairs_tested,
            "pass_rate_groups": groups_tested,
            "sittings": len(seated),
        },
    )
