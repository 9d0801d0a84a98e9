"""Errors raised by the item bank.

ItemBankError          base; ``code`` is the stable machine-readable code
├── InvalidItem        an item document breaks the schema (import refused whole)
└── InvalidResponse    a candidate's response does not fit the item's type
"""

from __future__ import annotations


class ItemBankError(Exception):
    """Base of item bank errors; ``code`` is stable and shown to API clients."""

    code = "item_bank_error"


class InvalidItem(ItemBankError):
    """One or more item documents are invalid; ``problems`` lists each one."""

    code = "invalid_item"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class InvalidResponse(ItemBankError):
    """A response value does not fit the item type (wrong shape or unknown option)."""

    code = "invalid_response"
