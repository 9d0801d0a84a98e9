"""Sanitising of item HTML.

Item content is authored or imported HTML and is later inserted into the candidate's
page, so it is cleaned on the way in: only the tags that items need survive (ruby for
furigana, simple emphasis, paragraphs, images), and no attribute can carry script.
"""

from __future__ import annotations

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
