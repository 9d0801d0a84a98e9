"""The item authors' pages: list and search, create and edit, preview, review, history.

Authors edit the item document (YAML, the format of ``item_bank/README.md``) with media
uploads; validation is the import's own, so a browser edit and a file import agree.
"""

from __future__ import annotations

import yaml
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from item_bank.authoring import (
    known_types,
    search_items,
    skeleton,
    to_yaml,
    version_diff,
    version_document,
)
from item_bank.bundle import Bundle, load_yaml
from item_bank.errors import InvalidItem, WorkflowError
from item_bank.models import Item
from item_bank.services import CLASSIFICATION_FIELDS, import_bundles, stored_media_for
from item_bank.types import ITEM_TYPES
from item_bank.workflow import approve, history, item_by_ref, retire, return_to_author
from item_bank.workflow import submit_for_review as submit
from testing_center.access import require_roles
from testing_center.accounts.models import Role, User
from testing_center.attempts.presenters import preview_state
from testing_center.clock import now
from testing_center.extensions import db

bp = Blueprint("author", __name__, url_prefix="/author")
AUTHORS = (Role.AUTHOR, Role.ADMIN)
MAX_UPLOADS = 20


def item_or_404(ref: str) -> Item:
    item = db.session.scalar(select(Item).where(Item.ref == ref))
    if item is None:
        abort(404)
    return item


@bp.route("/items")
@require_roles(*AUTHORS)
def items():
    filters = {name: request.args.get(name, "") for name in CLASSIFICATION_FIELDS}
    rows = search_items(
        db.session, request.args.get("q", "").strip(), filters, request.args.get("status", "")
    )
    return render_template("author/items.html", rows=rows, filters=filters, types=known_types())


def parse_document(text: str) -> dict:
    """Read the edited YAML; one item mapping is expected."""
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        raise InvalidItem([f"the document is not valid YAML: {error}"]) from error
    if not isinstance(document, dict):
        raise InvalidItem(["the document must be one item (a mapping of fields)"])
    if not isinstance(document.get("ref"), str) or not 0 < len(document["ref"]) <= 64:
        raise InvalidItem(["ref must be a text of 1 to 64 characters"])
    return document


def uploaded_media() -> dict[str, bytes]:
    """Files uploaded with the form, addressed in the document as ``media/<file name>``."""
    files = [f for f in request.files.getlist("media") if f.filename]
    if len(files) > MAX_UPLOADS:
        raise InvalidItem([f"upload at most {MAX_UPLOADS} files at once"])
    return {f"media/{f.filename.rsplit('/', 1)[-1]}": f.read() for f in files}


def save_document(text: str, expected_ref: str | None) -> Item:
    """Validate and store the edited document as a draft; raise with every problem."""
    document = parse_document(text)
    if expected_ref is not None and document.get("ref") != expected_ref:
        raise InvalidItem([f"the ref cannot change here (it is {expected_ref!r})"])
    if expected_ref is None and db.session.scalar(
        select(Item.id).where(Item.ref == document.get("ref"))
    ):
        raise InvalidItem([f"an item {document.get('ref')!r} exists already"])
    media = {**stored_media_for(db.session, [document]), **uploaded_media()}
    bundle = Bundle(items=[document], media=media, origin="editor")
    import_bundles(db.session, [bundle], status="draft", now=now(), actor_id=current_user.id)
    return item_by_ref(db.session, document["ref"])


def editor(text: str, item: Item | None, status: int = 200, problems: list[str] | None = None):
    return render_template(
        "author/edit.html", text=text, item=item, problems=problems or [], types=known_types()
    ), status


@bp.route("/items/new", methods=["GET", "POST"])
@require_roles(*AUTHORS)
def new_item():
    if request.method == "GET":
        item_type = request.args.get("type", "single_choice")
        if item_type not in ITEM_TYPES:
            abort(404)
        return editor(to_yaml(skeleton(item_type)), None)
    text = request.form.get("document", "")
    try:
        item = save_document(text, None)
    except InvalidItem as error:
        db.session.rollback()
        return editor(text, None, 422, error.problems)
    db.session.commit()
    flash(_("Saved as a draft."), "info")
    return redirect(url_for("author.item_page", ref=item.ref))


@bp.route("/items/<ref>/edit", methods=["GET", "POST"])
@require_roles(*AUTHORS)
def edit_item(ref: str):
    item = item_or_404(ref)
    if request.method == "GET":
        text = to_yaml(version_document(db.session, item, item.versions[-1]))
        return editor(text, item)
    text = request.form.get("document", "")
    try:
        save_document(text, ref)
    except InvalidItem as error:
        db.session.rollback()
        return editor(text, item, 422, error.problems)
    db.session.commit()
    flash(_("Saved as a draft."), "info")
    return redirect(url_for("author.item_page", ref=ref))


@bp.route("/items/<ref>")
@require_roles(*AUTHORS)
def item_page(ref: str):
    item = item_or_404(ref)
    number = request.args.get("version", type=int) or item.versions[-1].version_no
    version = next((v for v in item.versions if v.version_no == number), None)
    if version is None:
        abort(404)
    previous = next((v for v in item.versions if v.version_no == number - 1), None)
    diff = version_diff(db.session, item, previous, version) if previous else []
    events = history(db.session, item)
    people = {
        u.id: u.email
        for u in db.session.scalars(
            select(User).where(User.id.in_({e.actor_id for e in events if e.actor_id}))
        )
    }
    return render_template(
        "author/item.html",
        item=item,
        version=version,
        diff=diff,
        events=events,
        people=people,
        preview_data=preview_state(item, version),
    )


ACTIONS = {  # each acts on the version the person saw (the form names it)
    "submit": lambda item, note, seen: submit(db.session, item, current_user.id, now(), seen),
    "approve": lambda item, note, seen: approve(db.session, item, current_user.id, now(), seen),
    "return": lambda item, note, seen: return_to_author(
        db.session, item, current_user.id, note, now(), seen
    ),
    "retire": lambda item, note, seen: retire(db.session, item, current_user.id, now()),
}


@bp.route("/items/<ref>/<action>", methods=["POST"])
@require_roles(*AUTHORS)
def review_action(ref: str, action: str):
    if action not in ACTIONS:
        abort(404)
    item = item_or_404(ref)
    try:
        ACTIONS[action](item, request.form.get("note", ""), request.form.get("version", type=int))
    except WorkflowError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("author.item_page", ref=ref)), 303
    db.session.commit()
    flash(_("Done: %(action)s.", action=action), "info")
    return redirect(url_for("author.item_page", ref=ref)), 303
