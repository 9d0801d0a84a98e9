"""The registry of item types: one class per type, keyed by a stable id.

Each type knows how to validate authored content and its key, how to validate a
candidate's response, how to grade it and how to show the item to a candidate. The
candidate view is built from content only, so no key can reach a candidate's browser by
construction. Adding a type is adding one class to ``ITEM_TYPES``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from item_bank.errors import InvalidResponse
from item_bank.html import sanitize_html


class ItemType(ABC):
    """Behaviour shared by all item types; subclasses set ``code`` and implement."""

    code: ClassVar[str]

    @abstractmethod
    def clean_content(self, content: dict[str, Any], key: Any) -> tuple[dict[str, Any], list[str]]:
        """Return sanitised content and the list of problems found (empty when valid)."""

    @abstractmethod
    def check_response(self, content: dict[str, Any], response: Any) -> None:
        """Raise ``InvalidResponse`` when ``response`` cannot be an answer to this item."""

    @abstractmethod
    def grade(self, key: Any, response: Any) -> float:
        """Return the credit, from 0.0 to 1.0, that ``response`` earns against ``key``."""

    @abstractmethod
    def candidate_view(
        self, content: dict[str, Any], option_order: Sequence[str]
    ) -> dict[str, Any]:
        """Return what a candidate may see of the item: never the key."""

    def option_ids(self, content: dict[str, Any]) -> list[str]:
        """Return the ids of the options that form assembly may shuffle (none by default)."""
        return []


class SingleChoice(ItemType):
    """One correct option out of three to five; the response is the option id ("B")."""

    code = "single_choice"
    MIN_OPTIONS = 3
    MAX_OPTIONS = 5

    def clean_content(self, content: dict[str, Any], key: Any) -> tuple[dict[str, Any], list[str]]:
        problems: list[str] = []
        stem = content.get("stem")
        if not isinstance(stem, str) or not sanitize_html(stem):
            problems.append("stem must be non-empty HTML")
        options = content.get("options")
        if not isinstance(options, list) or not (
            self.MIN_OPTIONS <= len(options) <= self.MAX_OPTIONS
        ):
            problems.append(f"options must be a list of {self.MIN_OPTIONS}-{self.MAX_OPTIONS}")
            return content, problems
        cleaned_options = []
        for option in options:
            if not isinstance(option, dict) or not isinstance(option.get("id"), str):
                problems.append("each option needs a string id and html")
                continue
            html = sanitize_html(str(option.get("html", "")))
            if not html:
                problems.append(f"option {option['id']} has no content")
            cleaned_options.append({"id": option["id"], "html": html})
        ids = [option["id"] for option in cleaned_options]
        if len(set(ids)) != len(ids):
            problems.append("option ids must be unique")
        if key not in ids:
            problems.append(f"key {key!r} is not one of the option ids {ids}")
        cleaned = {
            "stem": sanitize_html(stem) if isinstance(stem, str) else "",
            "options": cleaned_options,
        }
        return cleaned, problems

    def check_response(self, content: dict[str, Any], response: Any) -> None:
        if not isinstance(response, str) or response not in self.option_ids(content):
            raise InvalidResponse("response must be the id of one of the item's options")

    def grade(self, key: Any, response: Any) -> float:
        return 1.0 if response is not None and response == key else 0.0

    def candidate_view(
        self, content: dict[str, Any], option_order: Sequence[str]
    ) -> dict[str, Any]:
        by_id = {option["id"]: option for option in content["options"]}
        order = list(option_order) or list(by_id)
        return {"stem": content["stem"], "options": [dict(by_id[i]) for i in order]}

    def option_ids(self, content: dict[str, Any]) -> list[str]:
        return [option["id"] for option in content["options"]]


ITEM_TYPES: dict[str, ItemType] = {item_type.code: item_type for item_type in (SingleChoice(),)}
