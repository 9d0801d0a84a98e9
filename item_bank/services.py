"""Importing bundles into the bank, exporting them, and finding items for assembly.

Services take a SQLAlchemy session and flush; the caller owns the transaction. An import
validates every document and every media file before it writes anything, and raises
``InvalidItem`` listing all problems, so the bank is either changed as a whole or not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from sqlalchemy import Integer, and_, any_, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from item_bank.bundle import (
    STORED_MEDIA_PREFIX,
    Bundle,
    html_fields,
    load_yaml,
    media_paths,
    media_uses,
    rewrite_image_paths,
)
from item_bank.errors import InvalidItem, InvalidMedia
from item_bank.html import find_unsafe_html, sanitize_html
from item_bank.media import process_media
from item_bank.models import Item, ItemEnemy, ItemEvent, ItemVersion, Media, Stimulus
from item_bank.qti import read_qti
from item_bank.revision import current_revision  # noqa: F401 - also registers its listeners
from item_bank.types import ITEM_TYPES

SAMPLES_DIR = Path(__file__).parent / "samples"
CLASSIFICATION_FIELDS = ("exam_family", "section", "level", "topic")
DETAIL_FIELDS = ("can_do", "tags", "author", "source", "licence", "difficulty")
STIMULUS_KINDS = ("passage", "conversation", "notice", "picture")
MAX_PLAY_LIMIT = 5
MediaProcessor = Callable[[bytes, str], Any]


@dataclass(frozen=True)
class ImportReport:
    """What an import did: items created, new versions added, unchanged items skipped."""

    created: int
    versioned: int
    unchanged: int
    media_stored: int = 0


@dataclass
class Candidate:
    """A validated document on its way into the bank."""

    ref: str
    document: dict[str, Any]
    item_type: str = ""
    classification: dict[str, str] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    answer_key: Any = None
    explanation: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolEntry:
    """An approved item's current version, as form assembly sees it."""

    item_id: int
    item_ref: str
    version_id: int
    item_type: str
    topic: str
    option_ids: tuple[str, ...]
    group: str | None = None
    p: float | None = None  # classical facility, where the item has one


# ---- reading -----------------------------------------------------------------------


def safe_relative(path: str) -> PurePosixPath | None:
    """Return ``path`` if it stays inside its folder (no absolute paths, no ``..``)."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        return None
    return pure


def read_yaml_bundle(path: Path) -> Bundle:
    """Read a YAML authoring file and the media files it refers to (relative paths)."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InvalidItem([f"{path}: cannot be read as YAML ({error})"]) from error
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("items", []), list)
        or not (isinstance(data.get("stimuli", []), list))
    ):
        raise InvalidItem([f"{path}: expected a mapping with 'items' (and 'stimuli') lists"])
    items = [d for d in data.get("items", [])]
    stimuli = [d for d in data.get("stimuli", [])]
    media = {}
    folder = Path(path).parent.resolve()
    for document in [*items, *stimuli]:
        if not isinstance(document, Mapping):
            continue
        for relative in media_paths(document):
            pure = safe_relative(relative)
            file = (folder / pure).resolve() if pure else None
            if file and file.is_relative_to(folder) and file.is_file():
                media[relative] = file.read_bytes()
    return Bundle(items=items, stimuli=stimuli, media=media, origin=str(path))


def read_bundles(paths: Iterable[Path]) -> list[Bundle]:
    """Read an operator's YAML files and QTI packages (zip, folder, item XML) as trusted."""
    bundles = []
    for path in map(Path, paths):
        if path.suffix.lower() in (".yaml", ".yml"):
            bundle = read_yaml_bundle(path)
        elif path.exists():
            bundle = read_qti(path)
        else:
            raise InvalidItem([f"{path}: no such file or folder"])
        bundles.append(dataclasses.replace(bundle, trusted=True))
    return bundles


# ---- validation --------------------------------------------------------------------


def check_html(document: Mapping[str, Any], problems: list[str]) -> None:
    for html in html_fields(document):
        problems.extend(find_unsafe_html(html))


def check_play_limit(document: Mapping[str, Any], problems: list[str]) -> int:
    limit = document.get("play_limit", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PLAY_LIMIT:
        problems.append(f"play_limit must be a whole number from 1 to {MAX_PLAY_LIMIT}")
        return 1
    return limit


def check_texts(value: Any, name: str, problems: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f"{name} must map language codes to text")
        return {}
    return {str(lang): text for lang, text in value.items()}


FIELD_LENGTHS = {"exam_family": 32, "section": 64, "level": 16, "topic": 64, "group": 64}
IRT_MODELS = ("rasch", "1pl", "2pl", "3pl")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_difficulty(value: Any, problems: list[str]) -> None:
    """Difficulty: classical facility ``p`` (0-1) and IRT parameters, all finite numbers."""
    if not isinstance(value, Mapping) or set(value) - {"p", "irt"}:
        problems.append("difficulty may hold p and irt only")
        return
    if "p" in value and not (finite_number(value["p"]) and 0 <= value["p"] <= 1):
        problems.append("difficulty.p must be a number from 0 to 1")
    irt = value.get("irt")
    if irt is None:
        return
    if not isinstance(irt, Mapping) or irt.get("model") not in IRT_MODELS:
        problems.append(f"difficulty.irt.model must be one of {list(IRT_MODELS)}")
        return
    for name in set(irt) - {"model", "scale"}:
        if name not in ("a", "b", "c") or not finite_number(irt[name]):
            problems.append(f"difficulty.irt.{name}: a, b and c are finite numbers")
    if "scale" in irt and not isinstance(irt["scale"], str):
        problems.append("difficulty.irt.scale must be text")


def check_details(document: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """Validate the metadata a version holds: classification, set, enemies, descriptions."""
    details: dict[str, Any] = {"classification": {}}
    for name in CLASSIFICATION_FIELDS:
        value = document.get(name)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{name} is required")
        elif len(value.strip()) > FIELD_LENGTHS[name]:
            problems.append(f"{name} must have at most {FIELD_LENGTHS[name]} characters")
        details["classification"][name] = value.strip() if isinstance(value, str) else ""
    group = document.get("group")
    if group is not None:
        if not isinstance(group, str) or not 0 < len(group) <= FIELD_LENGTHS["group"]:
            problems.append("group must be a ref of at most 64 characters")
        details["group"] = str(group)
    enemies = document.get("enemies") or []
    if not isinstance(enemies, list) or not all(
        isinstance(e, str) and len(e) <= 64 for e in enemies
    ):
        problems.append("enemies must be a list of item refs")
    elif enemies:
        details["enemies"] = sorted(set(enemies))
    for name in ("can_do", "author", "source", "licence"):
        value = document.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > 1000:
                problems.append(f"{name} must be text of at most 1000 characters")
            details[name] = str(value)
    tags = document.get("tags")
    if tags is not None:
        if (
            not isinstance(tags, list)
            or len(tags) > 30
            or not all(isinstance(t, str) and 0 < len(t) <= 64 for t in tags)
        ):
            problems.append("tags must be a list of at most 30 short texts")
        details["tags"] = [str(t) for t in tags] if isinstance(tags, list) else []
    if document.get("difficulty") is not None:
        check_difficulty(document["difficulty"], problems)
        details["difficulty"] = document["difficulty"]
    language = document.get("language") or "ja"
    if not isinstance(language, str) or not LANGUAGE_TAG.match(language):
        problems.append("language must be a language tag such as ja")
    details["language"] = str(language)
    return details


def validate_item(document: Any) -> tuple[Candidate | None, list[str]]:
    """Return the validated item, or None and every problem found in ``document``."""
    if not isinstance(document, Mapping):
        return None, ["an item must be a mapping"]
    ref = document.get("ref")
    label = ref if isinstance(ref, str) and ref else "<item without ref>"
    problems: list[str] = []
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 64:
        problems.append("ref must be a non-empty string of at most 64 characters")
    candidate = Candidate(ref=str(ref or "").strip(), document=dict(document))
    item_type = ITEM_TYPES.get(str(document.get("type")))
    if item_type is None:
        problems.append(f"unknown item type {document.get('type')!r}")
    stem = document.get("stem")
    if not isinstance(stem, str) or not sanitize_html(stem):
        problems.append("stem must be non-empty HTML")
    check_html(document, problems)
    candidate.explanation = check_texts(document.get("explanation"), "explanation", problems)
    candidate.details = check_details(document, problems)
    candidate.classification = candidate.details["classification"]
    if document.get("stimulus") is not None and not isinstance(document.get("stimulus"), str):
        problems.append("stimulus must be a ref (text)")
    fixed_order = document.get("fixed_order", False)
    if not isinstance(fixed_order, bool):
        problems.append("fixed_order must be true or false")
    if document.get("audio") is not None:
        if not isinstance(document["audio"], str):
            problems.append("audio must be a path to an audio file")
        check_play_limit(document, problems)
    if item_type is not None:
        content, key, type_problems = item_type.clean(document)
        problems.extend(type_problems)
        candidate.item_type = item_type.code
        candidate.content = {
            "stem": sanitize_html(stem) if isinstance(stem, str) else "",
            **content,
        }
        if fixed_order is True:
            candidate.content["fixed_order"] = True
        candidate.answer_key = key
    if problems:
        return None, [f"{label}: {problem}" for problem in problems]
    return candidate, []


def validate_stimulus(document: Any) -> tuple[dict[str, Any] | None, list[str]]:
    """Return a clean stimulus document, or None and its problems."""
    if not isinstance(document, Mapping):
        return None, ["a stimulus must be a mapping"]
    ref = document.get("ref")
    problems: list[str] = []
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 64:
        problems.append("ref must be a non-empty string of at most 64 characters")
    if document.get("kind") not in STIMULUS_KINDS:
        problems.append(f"kind must be one of {list(STIMULUS_KINDS)}")
    html = document.get("html")
    if html is not None and not isinstance(html, str):
        problems.append("html must be text")
    if not html and not document.get("audio"):
        problems.append("a stimulus needs html, audio or both")
    check_html(document, problems)
    clean = {
        "ref": str(ref or "").strip(),
        "kind": document.get("kind"),
        "html": sanitize_html(html) if isinstance(html, str) else "",
        "language": str(document.get("language") or "ja"),
    }
    if document.get("audio") is not None:
        clean["audio"] = document["audio"]
        clean["play_limit"] = check_play_limit(document, problems)
    if problems:
        return None, [f"{ref or '<stimulus without ref>'}: {problem}" for problem in problems]
    return clean, []


# ---- import ------------------------------------------------------------------------


@dataclass
class Staged:
    """Everything an import will write, built before anything is written."""

    items: list[tuple[Bundle, Candidate]] = field(default_factory=list)
    stimuli: dict[str, tuple[Bundle, dict[str, Any]]] = field(default_factory=dict)
    media: dict[tuple[str, str], Any] = field(default_factory=dict)  # (origin, path) -> processed


def is_stored_copy(data: bytes, path: str) -> bool:
    """True for a file named by its own SHA-256 (our export): it is stored as it is."""
    return PurePosixPath(path).stem == hashlib.sha256(data).hexdigest()


def stage_media(
    bundle: Bundle,
    document: Mapping[str, Any],
    staged: Staged,
    process: MediaProcessor,
    problems: list[str],
) -> None:
    """Process every media file a document refers to, collecting problems."""
    for path, kind in media_uses(document):
        key = (bundle.origin, path)
        if key in staged.media:
            if staged.media[key].kind != kind:
                problems.append(
                    f"{bundle.origin}: {document.get('ref')}: {path!r} is used "
                    f"as {kind} but is {staged.media[key].kind}"
                )
            continue
        data = bundle.media.get(path)
        if data is None or safe_relative(path) is None:
            problems.append(
                f"{bundle.origin}: {document.get('ref')}: media file {path!r} "
                "is missing or outside the package"
            )
            continue
        try:
            processed = process(data, path)
        except InvalidMedia as error:
            problems.append(f"{bundle.origin}: {document.get('ref')}: {error}")
            continue
        if processed.kind != kind:
            problems.append(
                f"{bundle.origin}: {document.get('ref')}: {path!r} should be "
                f"{kind} but is {processed.kind}"
            )
            continue
        if bundle.trusted and is_stored_copy(data, path):
            processed = type(processed)(
                **{**processed.__dict__, "data": data, "sha256": hashlib.sha256(data).hexdigest()}
            )
        staged.media[key] = processed


def stage(
    session: Session,
    bundles: list[Bundle],
    process: MediaProcessor,
    progress: Callable[[int], None] | None = None,
    status: str = "approved",
) -> Staged:
    """Validate all documents and media of all bundles; raise with every problem found.

    ``progress`` is called once per document checked (media processing is the slow part).
    """
    staged, problems = Staged(), []
    for bundle in bundles:
        for document in bundle.stimuli:
            stimulus, found = validate_stimulus(document)
            problems += [f"{bundle.origin}: {p}" for p in found]
            if stimulus is None:
                continue
            if stimulus["ref"] in staged.stimuli:
                problems.append(f"{bundle.origin}: {stimulus['ref']}: stimulus appears twice")
            staged.stimuli[stimulus["ref"]] = (bundle, stimulus)
            stage_media(bundle, stimulus, staged, process, problems)
            if progress:
                progress(1)
        for document in bundle.items:
            candidate, found = validate_item(document)
            problems += [f"{bundle.origin}: {p}" for p in found]
            if candidate is not None:
                staged.items.append((bundle, candidate))
                stage_media(bundle, candidate.document, staged, process, problems)
            if progress:
                progress(1)
    problems += check_references(session, staged)
    if status == "draft":
        problems += check_not_in_review(session, staged)
    if problems:
        raise InvalidItem(problems)
    return staged


def check_not_in_review(session: Session, staged: Staged) -> list[str]:
    """A version in review is what the reviewer reads: drafts may not change it."""
    refs = [candidate.ref for _, candidate in staged.items]
    reviewed = session.scalars(
        select(Item.ref)
        .join(ItemVersion, ItemVersion.item_id == Item.id)
        .where(Item.ref.in_(refs), ItemVersion.status == "in_review")
    )
    return [
        f"{ref}: a version is in review; it cannot change until it is returned or approved"
        for ref in reviewed
    ]


def check_references(session: Session, staged: Staged) -> list[str]:
    """Refs must be unique, and stimuli and enemies must exist in the import or the bank."""
    problems = []
    refs = [candidate.ref for _, candidate in staged.items]
    for ref in sorted({ref for ref in refs if refs.count(ref) > 1}):
        problems.append(f"{ref}: appears more than once")
    known_items = set(refs) | set(session.scalars(select(Item.ref)))
    known_stimuli = set(staged.stimuli) | set(session.scalars(select(Stimulus.ref)))
    for bundle, candidate in staged.items:
        stimulus = candidate.document.get("stimulus")
        if stimulus and stimulus not in known_stimuli:
            problems.append(f"{bundle.origin}: {candidate.ref}: unknown stimulus {stimulus!r}")
        for enemy in candidate.document.get("enemies") or []:
            if enemy not in known_items or enemy == candidate.ref:
                problems.append(f"{bundle.origin}: {candidate.ref}: unknown enemy item {enemy!r}")
    return problems


def store_media(session: Session, staged: Staged, now: dt.datetime) -> dict[tuple, str]:
    """Store each processed file once (by hash); return (origin, path) -> stored URL."""
    existing = set(session.scalars(select(Media.sha256)))
    urls = {}
    for key, processed in staged.media.items():
        if processed.sha256 not in existing:
            session.add(
                Media(
                    sha256=processed.sha256,
                    kind=processed.kind,
                    mime_type=processed.mime_type,
                    data=processed.data,
                    size_bytes=len(processed.data),
                    duration_ms=processed.duration_ms,
                    width=processed.width,
                    height=processed.height,
                    created_at=now,
                )
            )
            existing.add(processed.sha256)
        urls[key] = STORED_MEDIA_PREFIX + processed.sha256
    return urls


def with_stored_media(bundle: Bundle, value: Any, urls: Mapping[tuple, str]) -> Any:
    """Return ``value`` (content) with image paths replaced by stored URLs, recursively."""
    local = {path: url for (origin, path), url in urls.items() if origin == bundle.origin}
    if isinstance(value, str):
        return rewrite_image_paths(value, local)
    if isinstance(value, list):
        return [with_stored_media(bundle, inner, urls) for inner in value]
    if isinstance(value, dict):
        return {k: with_stored_media(bundle, inner, urls) for k, inner in value.items()}
    return value


def audio_reference(bundle: Bundle, document: Mapping[str, Any], staged: Staged) -> dict | None:
    """Return the stored audio of a document: hash, play limit and duration (or None)."""
    if not isinstance(document.get("audio"), str):
        return None
    processed = staged.media[(bundle.origin, document["audio"])]
    return {
        "media": processed.sha256,
        "play_limit": document.get("play_limit", 1),
        "duration_ms": processed.duration_ms,
    }


def stimulus_content(
    bundle: Bundle, stimulus: Mapping[str, Any], staged: Staged, urls: Mapping[tuple, str]
) -> dict[str, Any]:
    content = {
        "ref": stimulus["ref"],
        "kind": stimulus["kind"],
        "language": stimulus["language"],
        "html": with_stored_media(bundle, stimulus["html"], urls),
    }
    audio = audio_reference(bundle, stimulus, staged)
    if audio:
        content["audio"] = audio
    return content


def upsert_stimuli(
    session: Session, staged: Staged, urls: Mapping[tuple, str], now: dt.datetime
) -> dict[str, dict[str, Any]]:
    """Store the imported stimuli; return every known stimulus's content by ref."""
    stored = {s.ref: s for s in session.scalars(select(Stimulus))}
    for ref, (bundle, stimulus) in staged.stimuli.items():
        content = stimulus_content(bundle, stimulus, staged, urls)
        if ref not in stored:
            stored[ref] = Stimulus(ref=ref, content=content, updated_at=now)
            session.add(stored[ref])
        elif stored[ref].content != content:
            stored[ref].content, stored[ref].updated_at = content, now
    return {ref: stimulus.content for ref, stimulus in stored.items()}


def import_bundles(
    session: Session,
    bundles: list[Bundle],
    *,
    status: str,
    now: dt.datetime,
    process: MediaProcessor = process_media,
    actor_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Add the bundles' items to the bank, all or nothing.

    Everything is validated and every media file processed before the first write. An
    item whose ref exists gets a new version only when something changed, so importing
    the same files twice changes nothing.
    """
    if status not in ("draft", "approved"):
        raise InvalidItem([f"imports are stored as draft or approved, not {status!r}"])
    staged = stage(session, bundles, process, progress, status)
    urls = store_media(session, staged, now)
    stimuli = upsert_stimuli(session, staged, urls, now)
    existing = {
        i.ref: i
        for i in session.scalars(select(Item).where(Item.ref.in_([c.ref for _, c in staged.items])))
    }
    created = versioned = unchanged = 0
    for bundle, candidate in staged.items:
        content = with_stored_media(bundle, candidate.content, urls)
        audio = audio_reference(bundle, candidate.document, staged)
        if audio:
            content["audio"] = audio
        if candidate.document.get("stimulus"):
            content["stimulus"] = stimuli[candidate.document["stimulus"]]
        item = existing.get(candidate.ref)
        outcome = write_item(session, item, candidate, content, status, now, actor_id)
        existing[candidate.ref] = outcome[0]
        created += outcome[1] == "created"
        versioned += outcome[1] == "versioned"
        unchanged += outcome[1] == "unchanged"
    if status == "approved":  # again, now that every item of the import exists
        for _, candidate in staged.items:
            item = existing[candidate.ref]
            sync_enemies(session, item, candidate.details.get("enemies", []))
    session.flush()
    return ImportReport(created, versioned, unchanged, len(set(urls.values())))


def write_item(
    session: Session,
    item: Item | None,
    candidate: Candidate,
    content: dict,
    status: str,
    now: dt.datetime,
    actor_id: int | None,
) -> tuple[Item, str]:
    """Create the item or add a version when anything changed; record the event.

    Everything about a version - type, classification, group, enemies - is held by the
    version. The item's own columns follow its approved version only (``publish``), so a
    draft never changes what exams draw or how an approved version is graded.
    """
    outcome = "versioned"
    if item is None:
        item = Item(
            ref=candidate.ref,
            item_type=candidate.item_type,
            created_at=now,
            **candidate.classification,
        )
        session.add(item)
        outcome = "created"
    latest = item.versions[-1] if item.versions else None
    if latest is not None and same_version(latest, candidate, content):
        return item, "unchanged"
    if status == "draft" and latest is not None and latest.status == "draft":
        # A draft is the author's working copy: it is edited in place, not versioned.
        latest.item_type, latest.content = candidate.item_type, content
        latest.answer_key, latest.explanation = candidate.answer_key, candidate.explanation
        latest.details = candidate.details
        record_event(session, item, latest.version_no, "edited", actor_id, now)
        return item, "versioned"
    version = ItemVersion(
        version_no=len(item.versions) + 1,
        status=status,
        item_type=candidate.item_type,
        content=content,
        answer_key=candidate.answer_key,
        explanation=candidate.explanation,
        details=candidate.details,
        created_at=now,
        created_by_id=actor_id,
        approved_at=now if status == "approved" else None,
        approved_by_id=actor_id if status == "approved" else None,
    )
    item.versions.append(version)
    session.flush()
    record_event(
        session, item, version.version_no, "imported", actor_id, now, f"imported as {status}"
    )
    if status == "approved":
        publish(session, item, version)
    return item, outcome


def same_version(version: ItemVersion, candidate: Candidate, content: dict) -> bool:
    return (
        version.item_type,
        version.content,
        version.answer_key,
        version.explanation,
        version.details,
    ) == (
        candidate.item_type,
        content,
        candidate.answer_key,
        candidate.explanation,
        candidate.details,
    )


def record_event(
    session: Session,
    item: Item,
    version_no: int,
    action: str,
    actor_id: int | None,
    now: dt.datetime,
    note: str | None = None,
) -> None:
    session.add(
        ItemEvent(
            item_id=item.id,
            version_no=version_no,
            action=action,
            actor_id=actor_id,
            note=note,
            at=now,
        )
    )


def publish(session: Session, item: Item, version: ItemVersion) -> None:
    """Make an approved version the item's face: type, classification, group, enemies."""
    item.item_type = version.item_type
    for name, value in version.details["classification"].items():
        setattr(item, name, value)
    item.group_ref = version.details.get("group")
    session.flush()
    sync_enemies(session, item, version.details.get("enemies", []))


def sync_enemies(session: Session, item: Item, enemy_refs: Iterable[str]) -> None:
    """Replace the item's enemy pairs by those its approved version names."""
    session.execute(delete(ItemEnemy).where(ItemEnemy.item_id == item.id))
    ids = dict(
        session.execute(select(Item.ref, Item.id).where(Item.ref.in_(list(enemy_refs)))).all()
    )
    for other in sorted(set(ids.values()) - {item.id}):
        session.add(ItemEnemy(item_id=item.id, enemy_id=other))
    session.flush()


def import_items(
    session: Session,
    documents: Iterable[Any],
    *,
    status: str,
    now: dt.datetime,
    process: MediaProcessor = process_media,
) -> ImportReport:
    """Import plain item documents (no media files): a convenience for callers and tests."""
    return import_bundles(
        session, [Bundle(items=list(documents))], status=status, now=now, process=process
    )


# ---- finding -----------------------------------------------------------------------


def approved_pool(session: Session, filters: Mapping[str, str]) -> list[PoolEntry]:
    """Return the newest approved version of every active item matching the filters.

    The filters apply inside the newest-version subquery too, so a part reads only its
    own items, and rows are plain columns, not ORM objects: half the time of reading
    the bank's newest versions whole for each part (benchmarks/README.md, assembly).
    """
    for name in filters:
        if name not in CLASSIFICATION_FIELDS:
            raise InvalidItem([f"cannot filter items on {name!r}"])
    matching = [getattr(Item, name) == value for name, value in filters.items()]
    newest = (
        select(ItemVersion.item_id, func.max(ItemVersion.version_no).label("version_no"))
        .join(Item, Item.id == ItemVersion.item_id)
        .where(ItemVersion.status == "approved", Item.retired_at.is_(None), *matching)
        .group_by(ItemVersion.item_id)
        .subquery()
    )
    query = (
        select(
            Item.id,
            Item.ref,
            Item.topic,
            Item.group_ref,
            ItemVersion.id,
            ItemVersion.item_type,
            ItemVersion.content,
            ItemVersion.details,
        )
        .join(newest, newest.c.item_id == Item.id)
        .join(
            ItemVersion,
            and_(ItemVersion.item_id == Item.id, ItemVersion.version_no == newest.c.version_no),
        )
        .order_by(Item.ref)
    )
    return [
        PoolEntry(
            item_id=item_id,
            item_ref=ref,
            version_id=version_id,
            item_type=item_type,
            topic=topic,
            option_ids=shuffleable_ids(item_type, content),
            group=group_ref,
            p=facility(details),
        )
        for item_id, ref, topic, group_ref, version_id, item_type, content, details in (
            session.execute(query)
        )
    ]


def facility(details: Mapping[str, Any]) -> float | None:
    """The item's classical facility (p) from its difficulty metadata, if recorded."""
    difficulty = details.get("difficulty")
    p = difficulty.get("p") if isinstance(difficulty, Mapping) else None
    return float(p) if isinstance(p, int | float) and not isinstance(p, bool) else None


def shuffleable_ids(item_type: str, content: Mapping[str, Any]) -> tuple[str, ...]:
    """Ids assembly may shuffle: none when the order is part of the item (spoken choices)."""
    if content.get("fixed_order"):
        return ()
    return tuple(ITEM_TYPES[item_type].option_ids(content))


def among(session: Session, column: Any, ids: list[int]) -> Any:
    """SQL ``column IN ids``; on PostgreSQL one array parameter (``= ANY``) instead of one
    parameter per id, which for pools of thousands of items costs more than the query
    (benchmarks/README.md, assembly)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(ids, ARRAY(Integer)))
    return column.in_(ids)


def enemy_pairs(session: Session, item_ids: Iterable[int]) -> set[tuple[int, int]]:
    """Return the enemy pairs among ``item_ids`` (lower id first)."""
    ids = list(item_ids)
    rows = session.execute(
        select(ItemEnemy.item_id, ItemEnemy.enemy_id).where(
            or_(among(session, ItemEnemy.item_id, ids), among(session, ItemEnemy.enemy_id, ids))
        )
    )
    return {(min(a, b), max(a, b)) for a, b in rows}


# ---- export ------------------------------------------------------------------------

IMG_STORED = re.compile(r'(<img\b[^>]*?\bsrc=")/media/([0-9a-f]{64})(")', re.IGNORECASE)
EXTENSIONS = {
    "audio/mpeg": "mp3",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
}


class Exporter:
    """Turns stored versions back into documents, collecting the media they use."""

    def __init__(self, session: Session, *, with_media: bool = True) -> None:
        self.session = session
        self.with_media = with_media  # False: documents only (editing), no file contents
        self.media: dict[str, bytes] = {}

    def path_for(self, sha256: str) -> str:
        """Return the package path of a stored file (named by its hash), loading it once."""
        row = self.session.scalar(select(Media).where(Media.sha256 == sha256))
        if row is None:
            raise InvalidItem([f"stored media {sha256} is missing from the bank"])
        path = f"media/{sha256}.{EXTENSIONS.get(row.mime_type, 'bin')}"
        if self.with_media and path not in self.media:
            self.media[path] = row.data
        return path

    def html(self, value: Any) -> Any:
        """Replace stored image URLs by package paths, recursively."""
        if isinstance(value, str):
            return IMG_STORED.sub(
                lambda m: m.group(1) + self.path_for(m.group(2)) + m.group(3), value
            )
        if isinstance(value, list):
            return [self.html(inner) for inner in value]
        if isinstance(value, dict):
            return {k: self.html(inner) for k, inner in value.items()}
        return value

    def audio(self, document: dict[str, Any], audio: Mapping[str, Any] | None) -> None:
        if audio:
            document["audio"] = self.path_for(audio["media"])
            document["play_limit"] = audio["play_limit"]

    def stimulus(self, content: Mapping[str, Any]) -> dict[str, Any]:
        document = {
            "ref": content["ref"],
            "kind": content["kind"],
            "html": self.html(content["html"]),
            "language": content["language"],
        }
        self.audio(document, content.get("audio"))
        return document

    def item(self, item: Item, version: ItemVersion) -> dict[str, Any]:
        """Return the document of one version: what it holds, as it was written."""
        content = dict(version.content)
        details = dict(version.details)
        document: dict[str, Any] = {
            "ref": item.ref,
            "type": version.item_type,
            **details.pop("classification"),
            "language": details.pop("language", "ja"),
        }
        group, enemies = details.pop("group", None), details.pop("enemies", None)
        document.update(details)
        if content.get("stimulus"):
            document["stimulus"] = content["stimulus"]["ref"]
        if content.get("fixed_order"):
            document["fixed_order"] = True
        self.audio(document, content.get("audio"))
        if group:
            document["group"] = group
        if enemies:
            document["enemies"] = list(enemies)
        document["stem"] = self.html(content["stem"])
        document.update(
            self.html(ITEM_TYPES[version.item_type].to_document(content, version.answer_key))
        )
        if version.explanation:
            document["explanation"] = dict(version.explanation)
        return document


def export_bundle(session: Session, filters: Mapping[str, str] | None = None) -> Bundle:
    """Return the newest approved version of every active item matching ``filters``."""
    exporter = Exporter(session)
    pool = approved_pool(session, filters or {})
    versions = {
        v.id: v
        for v in session.scalars(
            select(ItemVersion).where(ItemVersion.id.in_([e.version_id for e in pool]))
        )
    }
    items = {
        i.id: i for i in session.scalars(select(Item).where(Item.id.in_([e.item_id for e in pool])))
    }
    documents, stimuli = [], {}
    for entry in pool:
        version = versions[entry.version_id]
        documents.append(exporter.item(items[entry.item_id], version))
        snapshot = version.content.get("stimulus")
        if snapshot and snapshot["ref"] not in stimuli:
            stimuli[snapshot["ref"]] = exporter.stimulus(snapshot)
    return Bundle(
        items=documents, stimuli=list(stimuli.values()), media=exporter.media, origin="bank export"
    )


STORED_PATH = re.compile(r"^media/([0-9a-f]{64})\.[a-z0-9]+$")


def stored_media_for(session: Session, documents: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    """Return the bank's files for the ``media/<sha256>.<ext>`` paths documents mention.

    An edited document keeps pointing at media already in the bank; those files need no
    upload again (and, named by their hash, are stored as they are).
    """
    wanted = {}
    for document in documents:
        for path in media_paths(document):
            match = STORED_PATH.match(path)
            if match:
                wanted[match.group(1)] = path
    rows = (
        session.execute(select(Media.sha256, Media.data).where(Media.sha256.in_(list(wanted))))
        if wanted
        else []
    )
    return {wanted[sha256]: data for sha256, data in rows}
