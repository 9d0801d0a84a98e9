"""Sanitising of item HTML.

Item content is authored or imported HTML and is later inserted into the candidate's
page, so it is cleaned on the way in: only the tags that items need survive (ruby for
furigana, simple emphasis, paragraphs, images), and no attribute can carry script.
"""

from __future__ import annotations

import re

import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "span",
    "ruby",
    "rt",
    "rp",
    "img",
    "ul",
    "ol",
    "li",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "img": {"src", "alt", "width", "height"},
    "span": {"lang"},
    "p": {"lang"},
}


def sanitize_html(html: str) -> str:
    """Return ``html`` with everything but the allowed item markup removed."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"https", "data"},
        link_rel=None,
    ).strip()


UNSAFE_TAGS = re.compile(
    r"<\s*(script|iframe|object|embed|style|link|meta|base|form|frame|frameset|applet|svg)\b",
    re.IGNORECASE,
)
EVENT_ATTRIBUTE = re.compile(r"<[^>]*\s(on[a-z]+)\s*=", re.IGNORECASE)
UNSAFE_URL = re.compile(
    r"""(?:href|src|action|xlink:href)\s*=\s*["']?\s*(javascript|vbscript|data:(?!image/))""",
    re.IGNORECASE,
)


def find_unsafe_html(html: str) -> list[str]:
    """Name the unsafe constructs in ``html`` (scripts, event handlers, script URLs).

    Imports refuse such items instead of silently cleaning them: an item that arrives
    with a script is a sign of a broken or hostile source, and the author should know.
    """
    problems = [f"unsafe <{m.group(1).lower()}> element" for m in UNSAFE_TAGS.finditer(html)]
    problems += [
        f"event handler attribute {m.group(1).lower()}" for m in EVENT_ATTRIBUTE.finditer(html)
    ]
    problems += [f"{m.group(1).lower().rstrip(':')} URL" for m in UNSAFE_URL.finditer(html)]
    return problems
