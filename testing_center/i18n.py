"""Interface languages: choosing the locale of a request, and marking messages.

Candidates read instructions in Uzbek, Russian, English or Japanese; the choice comes
from the session (set by the language switch), then the account, then the browser.
"""

from __future__ import annotations

from flask import current_app, request, session
from flask_login import current_user


def N_(message: str) -> str:
    """Mark ``message`` for translation where it is created; it is translated when shown."""
    return message


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("locale")
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    return request.accept_languages.best_match(languages) or languages[0]
