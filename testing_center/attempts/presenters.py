"""What a candidate is shown of an attempt: state for the player, and the result.

Item payloads are built by the item type's ``candidate_view`` from content alone: the
key and the explanation are never read here, so they cannot leak into a payload.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from exam_templates.blueprint import Blueprint, SectionSpec
from item_bank.models import Item, ItemVersion
from item_bank.types import ITEM_TYPES
from testing_center.attempts.models import (
    Attempt,
    AttemptItem,
    AttemptPlay,
    AttemptSection,
    AttemptStatus,
)
from testing_center.attempts.services import stimulus_keys


def localized(texts: Mapping[str, str], locale: str) -> str:
    """Return the text in ``locale``, falling back to English."""
    return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")


def exam_summary(blueprint: Blueprint, locale: str) -> dict[str, Any]:
    return {
        "code": blueprint.code,
        "version": blueprint.version,
        "title": localized(blueprint.title, locale),
    }


def audio_view(play: AttemptPlay | None) -> dict[str, Any] | None:
    """Plays allowed and used for a clip; the clip itself is fetched through a play grant."""
    if play is None:
        return None
    return {"play_limit": play.play_limit, "plays_used": play.plays}


def item_view(attempt_item: AttemptItem, plays: Mapping[str, AttemptPlay]) -> dict[str, Any]:
    """Return one item as the candidate sees it: content, saved response, flag, audio."""
    version = attempt_item.item_version
    item_type = ITEM_TYPES[version.item_type]
    response = attempt_item.response
    view = {
        "ref": attempt_item.ref,
        "position": attempt_item.position,
        "type": item_type.code,
        "stem": version.content["stem"],
        **item_type.candidate_view(version.content, attempt_item.option_order),
        "response": response.value,
        "flagged": response.is_flagged,
        "client_seq": response.client_seq,
    }
    if version.content.get("audio"):
        view["audio"] = audio_view(plays.get(attempt_item.ref))
    return view


def stimulus_view(
    key: str, stimulus: Mapping[str, Any], plays: Mapping[str, AttemptPlay]
) -> dict[str, Any]:
    """Return a shared passage or conversation as the candidate sees it (no bank ref)."""
    view = {"id": key, "kind": stimulus["kind"], "html": stimulus["html"]}
    if stimulus.get("audio"):
        view["audio"] = audio_view(plays.get(key))
    return view


def seconds_until(moment: dt.datetime | None, now: dt.datetime) -> int:
    """Whole seconds from ``now`` to ``moment`` (0 when past or unset)."""
    if moment is None:
        return 0
    return max(0, math.ceil((moment - now).total_seconds()))


def section_view(
    spec: SectionSpec,
    row: AttemptSection,
    now: dt.datetime,
    locale: str,
    items: list[dict[str, Any]],
) -> dict[str, Any]:
    """One timed section: its state and clock; items once it has opened, never before.

    An open adaptive section shows only its current item: the earlier ones are final.
    """
    status = row.status
    shown = items[-1:] if spec.adaptive is not None and status == "open" else items
    return {
        "code": spec.code,
        "title": localized(spec.title, locale),
        "status": status,
        "started_at": row.started_at,
        "deadline_at": row.deadline_at,
        "remaining_seconds": seconds_until(row.deadline_at, now) if status == "open" else 0,
        "break_until": row.available_at if status == "break" else None,
        "item_count": len(items),
        "items": shown if status in ("open", "finished") else [],
        "adaptive": spec.adaptive is not None,
        "max_items": spec.count,
    }


def attempt_state(
    attempt: Attempt, blueprint: Blueprint, now: dt.datetime, locale: str
) -> dict[str, Any]:
    """Return the player's view of the attempt: clocks, open sections' items, responses.

    Items of sections not yet open are not sent: a candidate cannot look ahead in a
    sequential test. Closed sections keep their items (read-only) for the record.
    While a proctor has paused the attempt its clocks read as at the pause.
    """
    clock = attempt.paused_at or now
    rows = {row.code: row for row in attempt.sections}
    open_codes = {code for code, row in rows.items() if row.status in ("open", "finished")}
    by_section: dict[str, list[dict[str, Any]]] = {}
    plays = {play.source: play for play in attempt.plays}
    keys = stimulus_keys(item.item_version.content for item in attempt.items)
    stimuli: dict[str, dict[str, Any]] = {}
    for attempt_item in attempt.items:
        content = attempt_item.item_version.content
        view = item_view(attempt_item, plays)
        if content.get("stimulus"):
            key = keys[content["stimulus"]["ref"]]
            view["stimulus"] = key
            if attempt_item.section_code in open_codes:
                stimuli.setdefault(key, stimulus_view(key, content["stimulus"], plays))
        by_section.setdefault(attempt_item.section_code, []).append(view)
    sections = [
        section_view(spec, rows[spec.code], clock, locale, by_section.get(spec.code, []))
        for spec in blueprint.sections
    ]
    timing = attempt_clock(attempt, now)
    current = timing["current_section"]
    title = next(s["title"] for s in sections if s["code"] == current["code"])
    answered = sum(1 for item in attempt.items if item.response.value is not None)
    return {
        **timing,
        "mode": attempt.mode,
        "exam": exam_summary(blueprint, locale),
        "started_at": attempt.started_at,
        "clock": blueprint.clock,
        "navigation": blueprint.navigation,
        "current_section": {**current, "title": title},
        "sections": sections,
        "stimuli": stimuli,
        "item_count": len(attempt.items),
        "answered_count": answered,
    }


def attempt_clock(attempt: Attempt, now: dt.datetime) -> dict[str, Any]:
    """Return the attempt's clock: the state's clock fields alone (``attempt_state``
    takes them from here), what the player needs to keep its countdown true and to
    notice that a section has changed or a proctor has paused the attempt.

    ``attempt`` as ORM objects or as ``player.ClockRows``; its sections in their order,
    which is the blueprint's.
    """
    clock = attempt.paused_at or now
    current = next((s for s in attempt.sections if s.status != "finished"), attempt.sections[-1])
    status = current.status
    remaining = seconds_until(current.deadline_at, clock) if status == "open" else 0
    return {
        "id": attempt.id,
        "status": attempt.status,
        "paused": attempt.paused_at is not None,
        "server_time": now,
        "deadline_at": attempt.deadline_at,
        "remaining_seconds": remaining if attempt.status == AttemptStatus.IN_PROGRESS else 0,
        "current_section": {
            "code": current.code,
            "status": status,
            "deadline_at": current.deadline_at,
            "remaining_seconds": remaining,
            "break_until": current.available_at if status == "break" else None,
        },
    }


def scoring_titles(blueprint: Blueprint, locale: str) -> dict[str, str]:
    """Titles of the scoring sections: the rule's own, else the timed section's, else code."""
    titles = {spec.code: localized(spec.title, locale) for spec in blueprint.sections}
    titles.update(
        {
            code: localized(texts, locale)
            for code, texts in blueprint.scoring.section_titles().items()
        }
    )
    return titles


def attempt_result(
    attempt: Attempt,
    blueprint: Blueprint,
    locale: str,
    released: bool = True,
    certificate_number: str | None = None,
) -> dict[str, Any]:
    """Return the scored result of a finished attempt (no scores until ``released``)."""
    result = (attempt.result or {}) if released else {}
    titles = scoring_titles(blueprint, locale)
    description = blueprint.scoring.describe()
    return {
        "attempt_id": attempt.id,
        "exam": exam_summary(blueprint, locale),
        "mode": attempt.mode,
        "status": attempt.status,
        "finished_at": attempt.finished_at,
        "finish_reason": attempt.finish_reason,
        "sections": [
            {**section, "title": titles.get(section["code"], section["code"])}
            for section in result.get("sections", [])
        ],
        "raw_points": result.get("raw_points"),
        "raw_max": result.get("raw_max"),
        "total": result.get("total"),
        "total_max": result.get("total_max"),
        "percent": result.get("percent"),
        "scale": description["scale"],
        "pass_rule": description["pass_rule"],
        "passed": result.get("passed"),
        "band": result.get("band"),
        "theta": result.get("theta"),
        "conditional_sem": result.get("conditional_sem"),
        "scoring_version": result.get("scoring_version"),
        "item_parameters": result.get("item_parameters"),
        "released": released,
        "certificate_number": certificate_number if released else None,
    }


def preview_state(item: Item, version: ItemVersion) -> dict[str, Any]:
    """One version as a candidate would see it, for authors (recordings play directly)."""
    item_type = ITEM_TYPES[version.item_type]
    content = version.content
    view: dict[str, Any] = {
        "ref": "q1",
        "position": 1,
        "type": item_type.code,
        "stem": content["stem"],
        **item_type.candidate_view(content, item_type.option_ids(content)),
        "response": None,
        "flagged": False,
        "client_seq": 0,
    }
    stimuli = {}
    if content.get("audio"):
        view["audio"] = preview_audio(content["audio"])
    if content.get("stimulus"):
        stimulus = content["stimulus"]
        view["stimulus"] = "s1"
        stimuli["s1"] = {"id": "s1", "kind": stimulus["kind"], "html": stimulus["html"]}
        if stimulus.get("audio"):
            stimuli["s1"]["audio"] = preview_audio(stimulus["audio"])
    return {
        "status": "in_progress",
        "remaining_seconds": 0,
        "stimuli": stimuli,
        "sections": [{"code": item.section, "title": item.section, "items": [view]}],
    }


def preview_audio(audio: Mapping[str, Any]) -> dict[str, Any]:
    return {"play_limit": audio["play_limit"], "plays_used": 0, "url": f"/media/{audio['media']}"}


def attempt_review(attempt: Attempt, blueprint: Blueprint, locale: str) -> dict[str, Any]:
    """A finished practice attempt item by item: the answer given, the key, the explanation.

    Only for templates with ``review: true`` (practice-only), checked by the caller.
    """
    plays = {play.source: play for play in attempt.plays}
    keys = stimulus_keys(item.item_version.content for item in attempt.items)
    titles = {section.code: localized(section.title, locale) for section in blueprint.sections}
    stimuli: dict[str, dict[str, Any]] = {}
    items = []
    for attempt_item in attempt.items:
        version = attempt_item.item_version
        item_type = ITEM_TYPES[version.item_type]
        view = item_view(attempt_item, plays)
        view.pop("audio", None)
        view.pop("client_seq", None)
        if version.content.get("stimulus"):
            key = keys[version.content["stimulus"]["ref"]]
            view["stimulus"] = key
            stimuli.setdefault(
                key,
                {
                    "id": key,
                    "kind": version.content["stimulus"]["kind"],
                    "html": version.content["stimulus"]["html"],
                },
            )
        response = attempt_item.response.value
        credit = item_type.grade(version.answer_key, response) if response is not None else 0.0
        view.update(
            {
                "section": titles.get(attempt_item.section_code, attempt_item.section_code),
                "correct_answer": item_type.to_document(version.content, version.answer_key)["key"],
                "credit": credit,
                "explanation": localized(version.explanation, locale)
                if version.explanation
                else "",
            }
        )
        items.append(view)
    return {
        "attempt_id": attempt.id,
        "exam": exam_summary(blueprint, locale),
        "items": items,
        "stimuli": stimuli,
        "study": study_summary(attempt, items),
    }


def study_summary(attempt: Attempt, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points per section and topic, weakest first: what to study next."""
    totals: dict[tuple[str, str], list[float]] = {}
    for attempt_item, view in zip(attempt.items, items, strict=True):
        topic = attempt_item.item_version.details["classification"]["topic"]
        earned, count = totals.setdefault((view["section"], topic), [0.0, 0])
        totals[(view["section"], topic)] = [earned + view["credit"], count + 1]
    rows = [
        {
            "section": section,
            "topic": topic.replace("_", " "),
            "points": round(earned, 2),
            "items": count,
            "percent": round(100 * earned / count),
        }
        for (section, topic), (earned, count) in totals.items()
    ]
    return sorted(rows, key=lambda row: (row["percent"], row["section"], row["topic"]))
