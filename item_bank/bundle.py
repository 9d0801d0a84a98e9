"""A set of item and stimulus documents with the media files they refer to.

Both sources of items, YAML authoring files and QTI packages, are read into a
``Bundle``; the bank imports a bundle and exports one, so the two formats share one
path through validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")', re.IGNORECASE)
STORED_MEDIA_PREFIX = "/media/"


class NoAliasLoader(yaml.SafeLoader):
    """Safe YAML that refuses aliases: a few bytes of anchors can expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Parse YAML written by people: safe types only, no aliases."""
    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class Bundle:
    """Documents (see item_bank/README.md) and media bytes keyed by relative path."""

    items: list[dict[str, Any]]
    stimuli: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, bytes] = field(default_factory=dict)
    origin: str = "<bundle>"
    # Files named by their own hash (our exports) are stored unprocessed only from a
    # trusted source: an operator's import, never an upload in the browser.
    trusted: bool = False


def html_fields(document: Mapping[str, Any]) -> Iterable[str]:
    """Yield every HTML string of an item or stimulus document."""
    for name in ("stem", "html"):
        if isinstance(document.get(name), str):
            yield document[name]
    for name in ("options", "prompts", "choices"):
        for choice in document.get(name) or []:
            if isinstance(choice, Mapping) and isinstance(choice.get("html"), str):
                yield choice["html"]


def image_paths(html: str) -> list[str]:
    """Return the relative image paths an HTML string refers to (not stored or data URLs)."""
    return [
        src
        for _, src, _ in IMG_SRC.findall(html)
        if src and not src.startswith((STORED_MEDIA_PREFIX, "data:", "http:", "https:"))
    ]


def media_uses(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return (path, kind) for every media file a document refers to: audio and images."""
    uses = [(document["audio"], "audio")] if isinstance(document.get("audio"), str) else []
    for html in html_fields(document):
        uses.extend((path, "image") for path in image_paths(html))
    return uses


def media_paths(document: Mapping[str, Any]) -> list[str]:
    """Return every media path a document refers to."""
    return [path for path, _ in media_uses(document)]


def rewrite_image_paths(html: str, stored: Mapping[str, str]) -> str:
    """Replace relative image paths by their stored URLs (``/media/<sha256>``)."""
    return IMG_SRC.sub(lambda m: m.group(1) + stored.get(m.group(2), m.group(2)) + m.group(3), html)
