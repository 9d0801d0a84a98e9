"""Errors raised by the item bank.

ItemBankError          base; ``code`` is the stable machine-readable code
├── InvalidItem        an item document breaks the schema (import refused whole)
├── InvalidResponse    a candidate's response does not fit the item's type
├── WorkflowError      a review step the item's state or the person's part does not allow
└── InvalidMedia       an uploaded audio or image file is refused (undecodable, too big, ...)
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


class WorkflowError(ItemBankError):
    """A review step that the item's state or the person's part does not allow."""

    code = "workflow_conflict"


class InvalidResponse(ItemBankError):
    """A response value does not fit the item type (wrong shape or unknown option)."""

    code = "invalid_response"


class InvalidMedia(ItemBankError):
    """An uploaded media file is refused; the message names the file and says why.

    Raised for anything the author can fix (wrong or damaged format, over a size or
    duration limit, silent audio), never for a server fault, so it is safe to show.
    """

    code = "invalid_media"
