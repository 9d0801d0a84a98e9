"""The registry of item types: one class per interaction, keyed by a stable id.

Each type knows how to validate an authored document into candidate-visible content and
a key, how to check and grade a response, how to show the item to a candidate, and how
to turn content and key back into a document (export). The candidate view is built from
content alone, so no key can reach a candidate by construction. Adding a type is adding
one class to ``ITEM_TYPES``. Document fields per type: ``item_bank/README.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from item_bank.errors import InvalidResponse
from item_bank.html import sanitize_html
from item_bank.normalize import normalize_answer

Cleaned = tuple[dict[str, Any], Any, list[str]]


def clean_choices(raw: Any, name: str, low: int, high: int, problems: list[str]) -> list[dict]:
    """Validate a list of ``{id, html}`` choices (options, prompts, fragments)."""
    if not isinstance(raw, list) or not low <= len(raw) <= high:
        problems.append(f"{name} must be a list of {low}-{high}")
        return []
    choices = []
    for choice in raw:
        choice_id = choice.get("id") if isinstance(choice, Mapping) else None
        if (
            isinstance(choice_id, bool)
            or not isinstance(choice_id, str | int)
            or not (isinstance(choice.get("html"), str) and 0 < len(str(choice_id)) <= 16)
        ):
            problems.append(f"each of {name} needs a short id and html text")
            continue
        html = sanitize_html(choice["html"])
        if not html:
            problems.append(f"{name} {choice['id']} has no content")
        choices.append({"id": str(choice["id"]), "html": html})
    ids = [choice["id"] for choice in choices]
    if len(set(ids)) != len(ids):
        problems.append(f"{name} ids must be unique")
    return choices


def ids_of(choices: Sequence[Mapping[str, Any]]) -> list[str]:
    return [choice["id"] for choice in choices]


def in_order(choices: Sequence[Mapping[str, Any]], order: Sequence[str]) -> list[dict]:
    """Return copies of ``choices`` in the frozen display order (all when no order)."""
    by_id = {choice["id"]: choice for choice in choices}
    return [dict(by_id[i]) for i in (list(order) or list(by_id))]


def scoring_flag(document: Mapping[str, Any], name: str, problems: list[str]) -> bool:
    scoring = document.get("scoring") or {}
    value = scoring.get(name, False) if isinstance(scoring, Mapping) else None
    if not isinstance(value, bool):
        problems.append(f"scoring.{name} must be true or false")
        return False
    return value


class ItemType(ABC):
    """Behaviour shared by all item types; subclasses set ``code`` and implement."""

    code: ClassVar[str]

    @abstractmethod
    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        """Return (content shown to candidates without the stem, key, problems)."""

    @abstractmethod
    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        """Raise ``InvalidResponse`` when ``response`` cannot be an answer to this item."""

    @abstractmethod
    def grade(self, key: Any, response: Any) -> float:
        """Return the credit, from 0.0 to 1.0, that a (valid) response earns."""

    @abstractmethod
    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        """Return the type's document fields (choices, key, scoring) for export."""

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        """Return what a candidate may see of the type's content: never the key."""
        return {}

    def option_ids(self, content: Mapping[str, Any]) -> list[str]:
        """Return the ids that form assembly may shuffle (none by default)."""
        return []


class SingleChoice(ItemType):
    """One correct option out of three to five (text or picture); response ``"B"``."""

    code = "single_choice"

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        problems: list[str] = []
        options = clean_choices(document.get("options"), "options", 3, 5, problems)
        key = document.get("key")
        if options and key not in ids_of(options):
            problems.append(f"key {key!r} is not one of the option ids {ids_of(options)}")
        return {"options": options}, key, problems

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        if not isinstance(response, str) or response not in self.option_ids(content):
            raise InvalidResponse("response must be the id of one of the item's options")

    def grade(self, key: Any, response: Any) -> float:
        return 1.0 if response == key else 0.0

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        return {"options": [dict(o) for o in content["options"]], "key": key}

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        return {"options": in_order(content["options"], option_order)}

    def option_ids(self, content: Mapping[str, Any]) -> list[str]:
        return ids_of(content["options"])


class MultipleResponse(ItemType):
    """Several correct options; all-or-nothing, or partial credit (right - wrong) / keys."""

    code = "multiple_response"

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        problems: list[str] = []
        options = clean_choices(document.get("options"), "options", 3, 8, problems)
        raw_key = document.get("key")
        key_ids = [str(i) for i in raw_key] if isinstance(raw_key, list) else []
        if not key_ids or len(set(key_ids)) != len(key_ids):
            problems.append("key must be a non-empty list of distinct option ids")
        elif options and not set(key_ids) <= set(ids_of(options)):
            problems.append(f"key {key_ids} names ids that are not options {ids_of(options)}")
        partial = scoring_flag(document, "partial_credit", problems)
        return {"options": options}, {"ids": sorted(key_ids), "partial_credit": partial}, problems

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        valid = self.option_ids(content)
        if (
            not isinstance(response, list)
            or len(set(map(str, response))) != len(response)
            or any(not isinstance(choice, str) or choice not in valid for choice in response)
        ):
            raise InvalidResponse("response must be a list of distinct option ids")

    def grade(self, key: Any, response: Any) -> float:
        chosen, right = set(response), set(key["ids"])
        if not key["partial_credit"]:
            return 1.0 if chosen == right else 0.0
        return max(0.0, (len(chosen & right) - len(chosen - right)) / len(right))

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        return {
            "options": [dict(o) for o in content["options"]],
            "key": list(key["ids"]),
            "scoring": {"partial_credit": key["partial_credit"]},
        }

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        return {"options": in_order(content["options"], option_order)}

    def option_ids(self, content: Mapping[str, Any]) -> list[str]:
        return ids_of(content["options"])


class Ordering(ItemType):
    """Put fragments in order (JLPT ★ sentence composition: one position may decide)."""

    code = "ordering"

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        problems: list[str] = []
        fragments = clean_choices(document.get("options"), "options", 3, 6, problems)
        key = document.get("key")
        if not isinstance(key, list) or sorted(map(str, key)) != sorted(ids_of(fragments)):
            problems.append("key must list every option id once, in the right order")
            key = []
        scoring = document.get("scoring") or {}
        star = scoring.get("star_position") if isinstance(scoring, Mapping) else "?"
        if star is not None and (
            isinstance(star, bool)
            or not isinstance(star, int)
            or not 1 <= star <= max(len(fragments), 1)
        ):
            problems.append("scoring.star_position must be a position from 1 to the fragments")
            star = None
        content = {"options": fragments, "star_position": star}
        return content, {"order": [str(i) for i in key], "star_position": star}, problems

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        if (
            not isinstance(response, list)
            or not all(isinstance(fragment, str) for fragment in response)
            or sorted(response) != sorted(self.option_ids(content))
        ):
            raise InvalidResponse("response must list every fragment id once")

    def grade(self, key: Any, response: Any) -> float:
        star = key["star_position"]
        if star:
            return 1.0 if response[star - 1] == key["order"][star - 1] else 0.0
        return 1.0 if list(response) == key["order"] else 0.0

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        document = {"options": [dict(o) for o in content["options"]], "key": list(key["order"])}
        if key["star_position"]:
            document["scoring"] = {"star_position": key["star_position"]}
        return document

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        return {
            "options": in_order(content["options"], option_order),
            "star_position": content["star_position"],
        }

    def option_ids(self, content: Mapping[str, Any]) -> list[str]:
        return ids_of(content["options"])


class TextEntry(ItemType):
    """A typed answer, compared after Japanese-aware normalisation, with alternatives."""

    code = "text_entry"
    DEFAULT_MAX_LENGTH = 100

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        problems: list[str] = []
        max_length = document.get("max_length", self.DEFAULT_MAX_LENGTH)
        if (
            isinstance(max_length, bool)
            or not isinstance(max_length, int)
            or not (1 <= max_length <= 1000)
        ):
            problems.append("max_length must be a whole number from 1 to 1000")
            max_length = self.DEFAULT_MAX_LENGTH
        raw = document.get("key")
        answers = raw.get("answers") if isinstance(raw, Mapping) else None
        normalize = (raw.get("normalize") or {}) if isinstance(raw, Mapping) else {}
        kana = normalize.get("kana", False) if isinstance(normalize, Mapping) else None
        if not isinstance(kana, bool):
            problems.append("key.normalize.kana must be true or false")
            kana = False
        cleaned = []
        for answer in answers if isinstance(answers, list) else []:
            value = answer.get("value") if isinstance(answer, Mapping) else None
            credit = answer.get("credit", 1.0) if isinstance(answer, Mapping) else None
            if not isinstance(value, str) or not value.strip():
                problems.append("each answer needs a non-empty value")
            elif (
                isinstance(credit, bool)
                or not isinstance(credit, int | float)
                or not (0 < credit <= 1)
            ):
                problems.append(f"answer {value!r}: credit must be above 0 and at most 1")
            else:
                cleaned.append({"value": value, "credit": float(credit)})
        if not cleaned:
            problems.append("key.answers must list at least one accepted answer")
        elif max(a["credit"] for a in cleaned) != 1.0:
            problems.append("at least one answer must earn full credit (1.0)")
        return {"max_length": max_length}, {"answers": cleaned, "kana": kana}, problems

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        if not isinstance(response, str) or len(response) > content["max_length"]:
            raise InvalidResponse("response must be text within the item's length limit")

    def grade(self, key: Any, response: Any) -> float:
        typed = normalize_answer(response, kana_equivalent=key["kana"])
        if not typed:
            return 0.0
        return max(
            (
                a["credit"]
                for a in key["answers"]
                if normalize_answer(a["value"], kana_equivalent=key["kana"]) == typed
            ),
            default=0.0,
        )

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        return {
            "max_length": content["max_length"],
            "key": {
                "answers": [dict(a) for a in key["answers"]],
                "normalize": {"kana": key["kana"]},
            },
        }

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        return {"max_length": content["max_length"]}


class Matching(ItemType):
    """Match each prompt to a choice; all-or-nothing or partial (right pairs / prompts)."""

    code = "matching"

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        problems: list[str] = []
        prompts = clean_choices(document.get("prompts"), "prompts", 2, 10, problems)
        choices = clean_choices(document.get("choices"), "choices", 2, 12, problems)
        raw = document.get("key")
        pairs = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
        if set(pairs) != set(ids_of(prompts)) or not set(pairs.values()) <= set(ids_of(choices)):
            problems.append("key must map every prompt id to a choice id")
        partial = scoring_flag(document, "partial_credit", problems)
        return (
            {"prompts": prompts, "choices": choices},
            {"pairs": pairs, "partial_credit": partial},
            problems,
        )

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        prompts, choices = set(ids_of(content["prompts"])), set(ids_of(content["choices"]))
        if not isinstance(response, dict) or any(
            prompt not in prompts or not isinstance(choice, str) or choice not in choices
            for prompt, choice in response.items()
        ):
            raise InvalidResponse("response must map prompt ids to choice ids")

    def grade(self, key: Any, response: Any) -> float:
        right = sum(1 for prompt, choice in key["pairs"].items() if response.get(prompt) == choice)
        if key["partial_credit"]:
            return right / len(key["pairs"])
        return 1.0 if right == len(key["pairs"]) else 0.0

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        return {
            "prompts": [dict(p) for p in content["prompts"]],
            "choices": [dict(c) for c in content["choices"]],
            "key": dict(key["pairs"]),
            "scoring": {"partial_credit": key["partial_credit"]},
        }

    def candidate_view(self, content: Mapping[str, Any], option_order: Sequence[str]) -> dict:
        return {
            "prompts": [dict(p) for p in content["prompts"]],
            "choices": in_order(content["choices"], option_order),
        }

    def option_ids(self, content: Mapping[str, Any]) -> list[str]:
        return ids_of(content["choices"])


class TrueFalse(ItemType):
    """A statement judged true or false (accommodation skills tests); response ``true``."""

    code = "true_false"

    def clean(self, document: Mapping[str, Any]) -> Cleaned:
        key = document.get("key")
        problems = [] if isinstance(key, bool) else ["key must be true or false"]
        return {}, key, problems

    def check_response(self, content: Mapping[str, Any], response: Any) -> None:
        if not isinstance(response, bool):
            raise InvalidResponse("response must be true or false")

    def grade(self, key: Any, response: Any) -> float:
        return 1.0 if response is key else 0.0

    def to_document(self, content: Mapping[str, Any], key: Any) -> dict[str, Any]:
        return {"key": key}


ITEM_TYPES: dict[str, ItemType] = {
    item_type.code: item_type
    for item_type in (
        SingleChoice(),
        MultipleResponse(),
        Ordering(),
        TextEntry(),
        Matching(),
        TrueFalse(),
    )
}
