"""QTI content packages to and from canonical item documents (see item_bank/README.md).

``read_qti`` turns a QTI 3.0 (or 2.1/2.2) content package, unpacked folder or single
item file into a ``Bundle`` (``item_bank.bundle.Bundle``, re-exported here: items,
stimuli, media keyed by the paths the documents use, and ``origin`` = the path read) of
canonical documents; ``write_qti_package`` writes a bundle as a QTI 3.0 content
package. Both are pure (no database, no Flask). Every problem found in a package is
collected and reported once, in a single ``InvalidItem`` whose messages name the file and
the item, so an import is all-or-nothing. Documents are not validated here: the bank's
validation does that after import.

Mapping (canonical -> QTI 3.0), one interaction per item, response ``RESPONSE``:

* single_choice: ``qti-choice-interaction max-choices="1"``, cardinality single.
* multiple_response: ``qti-choice-interaction max-choices="0"``, cardinality multiple;
  partial credit is a ``qti-mapping`` (+1/keys per right, -1/keys per wrong choice, lower
  bound 0) with the ``map_response`` template, else ``match_correct``.
* ordering: ``qti-order-interaction``, cardinality ordered; the JLPT star position is
  ``data-star-position`` on the interaction (the correct response stays the full order).
* text_entry: ``qti-text-entry-interaction`` inside the stem, in place of the first blank
  ``（　　）`` (kept in ``data-blank`` so import restores it), else appended to the stem;
  ``expected-length`` is max_length, the correct response is the first full-credit answer
  and a case-insensitive ``qti-mapping`` holds every answer's credit; ``normalize.kana``
  is ``data-kana-equivalent``.
* matching: ``qti-match-interaction`` with two ``qti-simple-match-set`` (prompts, then
  choices), directedPair ``"prompt choice"``; partial credit maps each pair to 1/prompts.
* true_false: ``qti-choice-interaction class="tc-true-false"`` with choices ``true`` and
  ``false``.
* ``scoring.partial_credit`` is also written as ``data-partial-credit`` so an explicit
  ``false`` survives; foreign items get partial credit from the ``map_response`` template.

Item body: ``<audio src data-play-limit>`` (item audio), ``<div class="tc-stem">`` (the
stem, HTML as XHTML in the QTI namespace, ``lang`` as ``xml:lang``), the interaction,
then one ``qti-rubric-block view="tutor" xml:lang`` per explanation language (the
explanation is plain text, in a ``<p>``, because the engine stores it unsanitised). Stimuli are
``qti-assessment-stimulus`` files (``data-kind``, ``xml:lang``, ``<div
class="tc-stimulus">``) referenced by ``qti-assessment-stimulus-ref``. Media paths in the
documents are package paths; in the XML they are relative to the XML file. HTML round
trips exactly when it is in the sanitiser's serialisation (``&amp;``, ``&nbsp;``, ``<br>``).
Identifiers that are not XML names (a matching prompt ``"1"``) are written as
``tc-x-<hex of UTF-8>`` and decoded on import.

Metadata extension: each manifest resource's ``<metadata>`` holds one element in the
namespace ``urn:testing-center:item:1`` whose text is a JSON object::

    <metadata>
      <tc:item xmlns:tc="urn:testing-center:item:1">{"exam_family": "jlpt", ...}</tc:item>
    </metadata>

``tc:item`` holds every field of the item document that the QTI body does not carry
(exam_family, level, section, topic, language, can_do, tags, author, source, licence,
difficulty, group, enemies, play_limit and any other field) exactly as in the document;
``tc:stimulus`` holds a stimulus's kind, language and play_limit. When present it is
authoritative for those fields. Items without it (foreign packages, single files) get
``language`` from ``xml:lang``, ``play_limit`` from ``data-play-limit`` and empty
classification fields, which the validator then reports ("exam_family is required").
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import stat
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from item_bank.bundle import Bundle
from item_bank.errors import InvalidItem

QTI3_NS = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
QTI3_XSD = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqti_asiv3p0_v1p0.xsd"
QTI2_NS_MARKER = "imsqti_v2p"
CP_NS = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
CP_XSD = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqtiv3p0_imscpv1p2_v1p0.xsd"
TC_NS = "urn:testing-center:item:1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
RP_TEMPLATE = "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/{}.xml"
ITEM_RESOURCE = "imsqti_item_xmlv3p0"
STIMULUS_RESOURCE = "imsqti_stimulus_xmlv3p0"
MANIFEST = "imsmanifest.xml"

MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_ENTRY_BYTES = 50 * 1024 * 1024
MAX_ENTRIES = 20_000
MAX_RATIO = 100
RATIO_CHECK_ABOVE = 1024 * 1024

BLANK = "（　　）"
BLANK_RE = re.compile(r"（[\u3000 ＿_]*）")
ENCODED_PREFIX = "tc-x-"
NCNAME_RE = re.compile(r"[^\W\d][\w.\-]*")
DOCTYPE_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
IDENTIFIER_RE = re.compile(rb"""\bidentifier\s*=\s*["']([^"']{1,200})["']""")
CLASSIFICATION = ("exam_family", "level", "section", "topic")
ITEM_BODY_FIELDS = frozenset(
    {"ref", "type", "stem", "options", "prompts", "choices", "key", "scoring"}
    | {"max_length", "explanation", "audio", "stimulus"}
)
STIMULUS_BODY_FIELDS = frozenset({"ref", "html", "audio"})
ITEM_FIELD_ORDER = (
    "ref type exam_family level section topic language can_do tags author source licence "
    "difficulty stimulus audio play_limit group enemies stem options prompts choices "
    "max_length key scoring explanation"
)
STIMULUS_FIELD_ORDER = "ref kind html audio play_limit language"
_VOID = "area base br col embed hr img input link meta param source track wbr"
_HTML = (
    "a abbr address article aside audio b bdi bdo blockquote body caption cite code colgroup "
    "dd del details dfn div dl dt em figcaption figure footer h1 h2 h3 h4 h5 h6 header i "
    "ins kbd label li nav object ol p picture pre q rb rp rt rtc ruby s samp section small "
    "span strong sub summary sup table tbody td tfoot th thead tr u ul var video"
)
_BLOCK = (
    "address article aside blockquote details div dl figure footer h1 h2 h3 h4 h5 h6 header "
    "hr nav ol p pre section table ul audio video object"
)
VOID_TAGS = frozenset(_VOID.split())
HTML_TAGS = VOID_TAGS | frozenset(_HTML.split())
BLOCK_TAGS = frozenset(_BLOCK.split())
STRUCTURAL = frozenset(
    {"qti-assessment-item", "qti-response-declaration", "qti-correct-response"}
    | {"qti-mapping", "qti-item-body", "qti-choice-interaction", "qti-order-interaction"}
    | {"qti-match-interaction", "qti-simple-match-set", "qti-rubric-block"}
    | {"qti-assessment-stimulus", "qti-stimulus-body", "manifest", "metadata"}
    | {"organizations", "resources", "resource"}
)


# --------------------------------------------------------------------------- shared helpers


def _local(element: Any) -> str:
    """Return the namespace-free name, so QTI 3, QTI 2 and XHTML read the same way."""
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    """Direct children by local name: QTI 3, QTI 2 and XHTML names alike."""
    return [child for child in element if _local(child) == name]


def _child(element: etree._Element, name: str) -> etree._Element | None:
    """The first such child, or None: most QTI parts occur at most once."""
    found = _children(element, name)
    return found[0] if found else None


def _descendants(element: etree._Element, name: str) -> list[etree._Element]:
    """Elements by local name anywhere below (choices may sit in wrappers)."""
    return [node for node in element.iter() if _local(node) == name]


def _classes(element: etree._Element) -> set[str]:
    """The class tokens: our own markers (tc-stem, tc-true-false) live there."""
    return set((element.get("class") or "").split())


def _encode_id(value: Any, *, force: bool = False) -> str:
    """Return a valid QTI identifier for ``value``, reversibly (ids like "1" are not)."""
    text = str(value)
    if not force and NCNAME_RE.fullmatch(text) and not text.startswith(ENCODED_PREFIX):
        return text
    return ENCODED_PREFIX + text.encode("utf-8").hex()


def _decode_id(value: str | None) -> str:
    """Undo ``_encode_id``; foreign identifiers come back unchanged."""
    text = (value or "").strip()
    if text.startswith(ENCODED_PREFIX):
        try:
            return bytes.fromhex(text[len(ENCODED_PREFIX) :]).decode("utf-8")
        except ValueError:
            return text
    return text


def _is_external(href: str) -> bool:
    """URLs with a scheme, absolute paths and fragments are not package files."""
    return bool(urlsplit(href).scheme) or href.startswith(("/", "#"))


def _resolve(base_file: str, href: str) -> str | None:
    """Return the package path ``href`` names from ``base_file``; None if it escapes."""
    target = posixpath.normpath(posixpath.join(posixpath.dirname(base_file), unquote(href)))
    if target == ".." or target.startswith(("../", "/")) or "\x00" in target:
        return None
    return target


def _relative_href(path: str, from_file: str) -> str:
    """Return the URL-quoted reference to package ``path`` from inside ``from_file``."""
    return quote(posixpath.relpath(path, posixpath.dirname(from_file) or "."), safe="/")


# --------------------------------------------------------------------------- HTML <-> XHTML


def _escape_text(text: str) -> str:
    """Escape like the sanitiser (html5ever) so sanitised HTML round trips exactly."""
    return (
        text.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _escape_attribute(text: str) -> str:
    """Attribute escaping as the sanitiser does it (exact round trip)."""
    return text.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


class _XhtmlBuilder(HTMLParser):
    """Builds XHTML elements in the QTI namespace from an HTML fragment.

    The stdlib tokenizer is used instead of an HTML tree builder because it adds no
    implied elements (html, body, p), which would break the exact round trip.
    """

    def __init__(self, parent: etree._Element) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [parent]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._element(tag, attrs)
        if element is not None and tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if _local(self.stack[depth]) == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        current = self.stack[-1]
        if len(current):
            current[-1].tail = (current[-1].tail or "") + data
        else:
            current.text = (current.text or "") + data

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> etree._Element | None:
        """Create the element; names XML cannot hold are dropped, not fatal."""
        try:
            element = etree.SubElement(self.stack[-1], f"{{{QTI3_NS}}}{tag}")
        except ValueError:
            return None
        for name, value in attrs:
            try:
                element.set(XML_LANG if name == "lang" else name, value or "")
            except ValueError:
                continue
        return element


def _html_into(parent: etree._Element, html: str) -> None:
    """Append the HTML fragment ``html`` to ``parent`` as XHTML (QTI bodies are XML)."""
    builder = _XhtmlBuilder(parent)
    builder.feed(html)
    builder.close()


def _outer_html(element: etree._Element) -> str:
    """Serialise one element as HTML5: void tags unclosed, xml:lang as lang."""
    name = _local(element)
    if not name:
        return ""
    attributes = "".join(
        f' {"lang" if key == XML_LANG else key}="{_escape_attribute(value)}"'
        for key, value in element.attrib.items()
        if key == XML_LANG or not key.startswith("{")
    )
    if name in VOID_TAGS:
        return f"<{name}{attributes}>"
    return f"<{name}{attributes}>{_inner_html(element)}</{name}>"


def _inner_html(element: etree._Element, *, strip: bool = False) -> str:
    """Return the content of ``element`` as an HTML string (the canonical form).

    ``strip`` is for foreign content: pretty-printing whitespace is dropped too.
    """
    if strip:
        _squeeze_layout(element)
    parts = [_escape_text(element.text or "")]
    for child in element:
        parts.append(_outer_html(child))
        parts.append(_escape_text(child.tail or ""))
    html = "".join(parts)
    return html.strip() if strip else html


# --------------------------------------------------------------------------- tree surgery


def _squeeze_layout(container: etree._Element) -> None:
    """Drop indentation (whitespace with a newline) next to block elements or at edges.

    Foreign QTI is usually pretty-printed; that whitespace is layout, not content, and
    would otherwise end up in stems. Between inline elements it becomes one space.
    """
    for node, slot in list(_text_slots(container)):
        text = getattr(node, slot)
        if not text or text.strip() or "\n" not in text:
            continue
        before, after = (None, node[0] if len(node) else None)
        if slot == "tail":
            before, after = node, node.getnext()
        edge = before is None or after is None
        block = any(n is not None and _local(n) in BLOCK_TAGS for n in (before, after))
        setattr(node, slot, "" if edge or block else " ")


def _append_text_before(element: etree._Element, text: str) -> None:
    """Put ``text`` where ``element`` starts (previous sibling's tail or parent's text)."""
    if not text:
        return
    previous, parent = element.getprevious(), element.getparent()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _remove(element: etree._Element, replacement: str = "") -> None:
    """Remove ``element`` but keep the text after it (lxml would drop its tail)."""
    _append_text_before(element, replacement + (element.tail or ""))
    element.getparent().remove(element)


def _unwrap(element: etree._Element) -> None:
    """Replace ``element`` by its content: used to keep a foreign prompt in the stem."""
    _append_text_before(element, element.text or "")
    for child in list(element):
        element.addprevious(child)
    _remove(element)


def _text_slots(element: etree._Element) -> Iterator[tuple[etree._Element, str]]:
    """Yield (node, "text"|"tail") for every text position inside ``element``, in order."""
    yield element, "text"
    for child in element:
        yield from _text_slots(child)
        yield child, "tail"


def _has_content_after(element: etree._Element, container: etree._Element) -> bool:
    """True when text or elements follow: an inline blank, not a tail."""
    node = element
    while node is not container and node is not None:
        if (node.tail or "").strip() or node.getnext() is not None:
            return True
        node = node.getparent()
    return False


def _indent(element: etree._Element, depth: int = 0) -> None:
    """Indent structural QTI/CP elements only: HTML content must keep its exact text."""
    if _local(element) not in STRUCTURAL or not len(element) or (element.text or "").strip():
        return
    pad = "\n" + "  " * (depth + 1)
    element.text = pad
    for child in element:
        child.tail = pad
        _indent(child, depth + 1)
    element[-1].tail = "\n" + "  " * depth


# --------------------------------------------------------------------------- safe XML


def _parser() -> etree.XMLParser:
    """A parser that never loads DTDs, entities or the network (XXE, billion laughs)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        load_dtd=False,
    )


def _guess_identifier(data: bytes) -> str:
    """Best-effort item id from raw bytes, so even unparsable files name their item."""
    match = IDENTIFIER_RE.search(data)
    return match.group(1).decode("utf-8", "replace") if match else "?"


def _parse_xml(data: bytes, label: str, problems: list[str]) -> etree._Element | None:
    """Parse untrusted XML hardened; refuse any DOCTYPE/ENTITY outright."""
    if DOCTYPE_RE.search(data):
        problems.append(f"{label}: DOCTYPE/ENTITY declarations are not allowed")
        return None
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        problems.append(f"{label}: line {error.lineno}: not well-formed XML ({error.msg})")
        return None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        problems.append(f"{label}: DOCTYPE/ENTITY declarations are not allowed")
        return None
    return root


def _kebab(name: str) -> str:
    """camelCase -> kebab-case, the QTI 2 -> QTI 3 renaming rule."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _normalise_qti2(root: etree._Element) -> None:
    """Rename QTI 2.x camelCase elements/attributes to their QTI 3 kebab-case names."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        qname = etree.QName(element)
        if QTI2_NS_MARKER not in (qname.namespace or ""):
            continue
        name = qname.localname
        if name in HTML_TAGS:
            element.tag = f"{{{QTI3_NS}}}{name}"
            continue
        element.tag = f"{{{QTI3_NS}}}qti-{_kebab(name)}"
        for key in [key for key in element.attrib if not key.startswith("{")]:
            if key != _kebab(key):
                element.set(_kebab(key), element.attrib.pop(key))


# --------------------------------------------------------------------------- package files


class _Files(ABC):
    """A package's files by package path, read into memory within the safety caps."""

    def __init__(self, label: str, problems: list[str]) -> None:
        self.label = label
        self.problems = problems

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """Return the file's bytes, or None when it is missing or refused."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether the package holds a file of that name."""


class _ZipFiles(_Files):
    """Zip members checked (slip, symlink, bomb, caps) and read into memory, never to disk."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(path.name, problems)
        self.data: dict[str, bytes] = {}
        try:
            with zipfile.ZipFile(path) as archive:
                self._load(archive)
        except (zipfile.BadZipFile, OSError) as error:
            problems.append(f"{path.name}: not a readable zip file ({error})")

    def _load(self, archive: zipfile.ZipFile) -> None:
        """Check every entry, then read the acceptable ones into memory."""
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            self.problems.append(f"{self.label}: more than {MAX_ENTRIES} entries")
            return
        total = 0
        for info in infos:
            problem = _zip_entry_problem(info)
            name = _zip_name(info.filename)
            if problem is None and name in self.data:
                problem = "appears twice in the zip"
            if problem is not None:
                self.problems.append(f"{self.label}: entry {info.filename}: {problem}")
                continue
            if info.is_dir():
                continue
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                self.problems.append(f"{self.label}: uncompressed size exceeds 200 MB")
                return
            data = self._read_member(archive, info)
            if data is not None:
                self.data[name] = data

    def _read_member(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
        """Read at most the declared size: declared sizes are checked, actual ones too."""
        try:
            with archive.open(info) as member:
                data = member.read(min(info.file_size, MAX_ENTRY_BYTES) + 1)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError) as error:
            self.problems.append(f"{self.label}: entry {info.filename}: unreadable ({error})")
            return None
        if len(data) > info.file_size or len(data) > MAX_ENTRY_BYTES:
            self.problems.append(f"{self.label}: entry {info.filename}: larger than declared")
            return None
        return data

    def read(self, name: str) -> bytes | None:
        return self.data.get(name)

    def exists(self, name: str) -> bool:
        return name in self.data


def _zip_name(raw: str) -> str:
    """The entry name as a package path (separators unified, no empty parts)."""
    return "/".join(part for part in re.split(r"[\\/]", raw) if part not in ("", "."))


def _zip_entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry is refused (slip, symlink, encryption, size, bomb), or None."""
    raw = info.filename
    parts = re.split(r"[\\/]", raw)
    if raw.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", raw) or "\x00" in raw:
        return "absolute path refused"
    if ".." in parts:
        return "path with '..' refused (zip slip)"
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link refused"
    if info.flag_bits & 0x1:
        return "encrypted entry refused"
    if info.file_size > MAX_ENTRY_BYTES:
        return f"uncompressed size {info.file_size} exceeds {MAX_ENTRY_BYTES} bytes"
    if info.file_size > RATIO_CHECK_ABOVE and info.file_size > MAX_RATIO * max(
        info.compress_size, 1
    ):
        return f"compression ratio above {MAX_RATIO}:1 refused (zip bomb)"
    return None


class _FolderFiles(_Files):
    """Files under a folder, read on demand; paths resolving outside it are refused."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        super().__init__(root.name, problems)
        self.root = root.resolve()
        self.total = 0
        self.cache: dict[str, bytes] = {}

    def _target(self, name: str) -> Path | None:
        """The real file for a package path, refused if it resolves outside."""
        target = (self.root / name).resolve()
        if not target.is_relative_to(self.root):
            self.problems.append(f"{name}: resolves outside the folder {self.label}")
            return None
        return target

    def exists(self, name: str) -> bool:
        target = self._target(name)
        return target is not None and target.is_file()

    def read(self, name: str) -> bytes | None:
        if name in self.cache:
            return self.cache[name]
        target = self._target(name)
        if target is None or not target.is_file():
            return None
        size = target.stat().st_size
        if size > MAX_ENTRY_BYTES or self.total + size > MAX_TOTAL_BYTES:
            self.problems.append(f"{name}: file too large (limits 50 MB a file, 200 MB in all)")
            return None
        self.total += size
        self.cache[name] = target.read_bytes()
        return self.cache[name]


# --------------------------------------------------------------------------- reading


@dataclass
class _Reader:
    """State of one import: files, problems and documents found so far."""

    files: _Files
    problems: list[str] = field(default_factory=list)
    origin: str = "<qti>"
    items: list[tuple[str, dict]] = field(default_factory=list)
    stimuli: dict[str, tuple[str, dict]] = field(default_factory=dict)
    media: dict[str, bytes] = field(default_factory=dict)

    def load_root(self, path: str, label: str) -> etree._Element | None:
        """Read and parse one QTI XML file, normalising QTI 2.x names to QTI 3."""
        data = self.files.read(path)
        if data is None:
            self.problems.append(f"{label}: file is missing")
            return None
        root = _parse_xml(data, f"{label} (item {_guess_identifier(data)})", self.problems)
        if root is not None:
            _normalise_qti2(root)
        return root

    def bundle(self) -> Bundle:
        """The documents read, as the bank's Bundle."""
        return Bundle(
            items=[document for _, document in self.items],
            stimuli=[document for _, document in self.stimuli.values()],
            media=dict(self.media),
            origin=self.origin,
        )


@dataclass
class _Item:
    """One item file being read: every problem is prefixed with its file and item."""

    reader: _Reader
    path: str
    identifier: str
    root: etree._Element
    strip: bool = True

    @property
    def label(self) -> str:
        """'file: item id', the prefix of every problem message."""
        return f"{self.path}: item {self.identifier}"

    def problem(self, text: str) -> None:
        """Record a problem about this item."""
        self.reader.problems.append(f"{self.label}: {text}")


def read_qti(path: Path) -> Bundle:
    """Read a QTI package (.zip), unpacked package folder or single item file.

    Raises ``InvalidItem`` listing every problem found, so nothing is imported from a
    package with any broken part.
    """
    path = Path(path)
    if path.name == MANIFEST:
        path = path.parent
    problems: list[str] = []
    if path.is_dir():
        reader = _Reader(_FolderFiles(path, problems), problems)
        _read_package(reader)
    elif path.is_file() and path.suffix.lower() == ".xml":
        reader = _Reader(_FolderFiles(path.parent, problems), problems)
        _read_file(reader, path.name, None, None)
        _check_duplicates(reader)
    elif path.is_file():
        reader = _Reader(_ZipFiles(path, problems), problems)
        if reader.files.exists(MANIFEST) or not problems:
            _read_package(reader)
    else:
        raise InvalidItem([f"{path}: no such file or folder"])
    if problems:
        raise InvalidItem(problems)
    reader.origin = str(path)
    return reader.bundle()


def _read_package(reader: _Reader) -> None:
    """Read every stimulus, item and web resource that the manifest lists."""
    data = reader.files.read(MANIFEST)
    if data is None:
        reader.problems.append(f"{reader.files.label}: {MANIFEST} is missing")
        return
    manifest = _parse_xml(data, MANIFEST, reader.problems)
    if manifest is None:
        return
    resources = _descendants(manifest, "resource")
    kinds = [_resource_kind(resource) for resource in resources]
    for wanted in ("stimulus", "item", "media"):
        for resource, kind in zip(resources, kinds, strict=True):
            if kind == wanted:
                _read_resource(reader, resource, kind)
    _check_duplicates(reader)


def _resource_kind(resource: etree._Element) -> str:
    """Classify a manifest resource by type: item, stimulus, media or other."""
    kind = (resource.get("type") or "").lower()
    if "imsqti_item" in kind:
        return "item"
    if "stimulus" in kind:
        return "stimulus"
    return "media" if kind.startswith(("webcontent", "associatedcontent")) else "other"


def _read_resource(reader: _Reader, resource: etree._Element, kind: str) -> None:
    """Check a resource's files exist, then read its XML (or collect its media)."""
    rid = resource.get("identifier") or "?"
    hrefs = [resource.get("href")] + [file.get("href") for file in _children(resource, "file")]
    paths = []
    for href in filter(None, dict.fromkeys(hrefs)):
        target = _resolve(MANIFEST, href)
        if target is None or not reader.files.exists(target):
            reader.problems.append(f"{MANIFEST}: resource {rid}: file {href} is missing")
        else:
            paths.append(target)
    if kind == "media":
        for target in paths:
            reader.media.setdefault(target, reader.files.read(target) or b"")
        return
    main = _resolve(MANIFEST, resource.get("href") or "") if resource.get("href") else None
    main = main or (paths[0] if paths else None)
    if main is not None and reader.files.exists(main):
        _read_file(reader, main, _extension(resource, kind, reader), kind)


def _extension(resource: etree._Element, kind: str, reader: _Reader) -> dict | None:
    """Return the resource's tc:item / tc:stimulus JSON metadata, if it has any."""
    for element in resource.iter(f"{{{TC_NS}}}{kind}"):
        try:
            value = json.loads(element.text or "")
        except ValueError as error:
            value = error
        if isinstance(value, dict):
            return value
        rid = resource.get("identifier")
        reader.problems.append(f"{MANIFEST}: resource {rid}: tc:{kind} is not a JSON object")
    return None


def _read_file(reader: _Reader, path: str, extension: dict | None, kind: str | None) -> None:
    """Read one QTI XML file as an item or a stimulus, according to its root element."""
    root = reader.load_root(path, path)
    if root is None:
        return
    name = _local(root)
    if name == "qti-assessment-item" and kind in (None, "item"):
        document = _read_item(reader, path, root, extension)
        if document is not None:
            reader.items.append((path, document))
    elif name == "qti-assessment-stimulus" and kind in (None, "stimulus"):
        _add_stimulus(reader, path, _read_stimulus(reader, path, root, extension))
    else:
        ident = _decode_id(root.get("identifier")) or "?"
        reader.problems.append(f"{path}: item {ident}: unexpected root element <{name}>")


def _add_stimulus(reader: _Reader, path: str, document: dict) -> None:
    """Register a stimulus once; a second file with its id is a problem."""
    ref = document["ref"]
    if ref in reader.stimuli:
        other = reader.stimuli[ref][0]
        reader.problems.append(f"{path}: stimulus {ref}: duplicate identifier (also {other})")
        return
    reader.stimuli[ref] = (path, document)


def _check_duplicates(reader: _Reader) -> None:
    """Refuse two items with one identifier: the bank would silently merge them."""
    seen: dict[str, str] = {}
    for path, document in reader.items:
        ref = document["ref"]
        if ref in seen:
            reader.problems.append(f"{path}: item {ref}: duplicate identifier (also {seen[ref]})")
        seen.setdefault(ref, path)


def _collect_media(item: _Item, body: etree._Element) -> None:
    """Rewrite media references to package paths and load each file (missing = problem)."""
    for element in body.iter():
        attribute = "data" if _local(element) == "object" else "src"
        href = element.get(attribute) if isinstance(element.tag, str) else None
        if not href or _is_external(href):
            continue
        target = _resolve(item.path, href)
        if target is None:
            item.problem(f"media path {href} points outside the package")
            continue
        data = item.reader.media.get(target) or item.reader.files.read(target)
        if data is None:
            item.problem(f"media file {target} is missing")
            continue
        item.reader.media[target] = data
        element.set(attribute, target)


def _read_item(
    reader: _Reader, path: str, root: etree._Element, extension: dict | None
) -> dict | None:
    """Return the canonical document of one item, or None (problems recorded)."""
    item = _Item(reader, path, _decode_id(root.get("identifier")) or "?", root)
    body = _child(root, "qti-item-body")
    if body is None:
        item.problem("has no item body")
        return None
    stem_div = next((c for c in body if "tc-stem" in _classes(c)), None)
    item.strip = stem_div is None
    _collect_media(item, body)
    found = _read_interaction(item, body)
    if found is None:
        return None
    item_type, fields, interaction = found
    document: dict[str, Any] = {"ref": item.identifier, "type": item_type}
    explanation = _pop_explanations(item, body)
    audio = _pop_audio(body)
    _read_stimulus_ref(item, document)
    _remove_interaction(interaction, stem_div if stem_div is not None else body)
    document["stem"] = _read_stem(body, stem_div)
    document.update(fields)
    _apply_audio(item, document, audio, extension)
    if explanation:
        document["explanation"] = explanation
    _apply_metadata(document, extension, root, ITEM_BODY_FIELDS)
    return _ordered(document, ITEM_FIELD_ORDER)


def _apply_metadata(
    document: dict, extension: dict | None, root: etree._Element, body_fields: frozenset
) -> None:
    """Take non-body fields from our extension, else from xml:lang (foreign files)."""
    if extension is not None:
        document.update({k: v for k, v in extension.items() if k not in body_fields})
        return
    if body_fields is ITEM_BODY_FIELDS:
        document.update(dict.fromkeys(CLASSIFICATION, ""))
    if root.get(XML_LANG):
        document["language"] = root.get(XML_LANG)


def _apply_audio(
    item: _Item, document: dict, audio: etree._Element | None, extension: dict | None
) -> None:
    """Audio path from the body; play_limit from it only for foreign files."""
    if audio is None:
        return
    document["audio"] = _audio_src(audio)
    limit = audio.get("data-play-limit")
    if extension is None and limit is not None:
        try:
            document["play_limit"] = int(limit)
        except ValueError:
            item.problem(f"data-play-limit {limit!r} is not a whole number")


def _ordered(document: dict, order: str) -> dict:
    """Put fields in README order (then any others) so documents read naturally."""
    rank = {name: index for index, name in enumerate(order.split())}
    return dict(sorted(document.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _read_interaction(item: _Item, body: etree._Element) -> tuple | None:
    """Find the single supported interaction and read its choices, key and scoring."""
    interactions = [e for e in body.iter() if _local(e).endswith("-interaction")]
    unsupported = sorted({_local(e) for e in interactions if _local(e) not in _READERS})
    if unsupported:
        item.problem(f"unsupported interaction {', '.join(unsupported)}")
        return None
    if len(interactions) != 1:
        item.problem("must have exactly one interaction" if interactions else "no interaction")
        return None
    interaction = interactions[0]
    declaration = _declaration_for(item.root, interaction)
    values = _correct_values(declaration) if declaration is not None else []
    if not values:
        item.problem(f"{_local(interaction)} has no correct response")
        return None
    found = _READERS[_local(interaction)](item, interaction, declaration, values)
    return None if found is None else (*found, interaction)


def _declaration_for(root: etree._Element, interaction: etree._Element) -> etree._Element | None:
    """The response declaration the interaction scores against."""
    declarations = _children(root, "qti-response-declaration")
    wanted = interaction.get("response-identifier")
    for declaration in declarations:
        if declaration.get("identifier") == wanted:
            return declaration
    return declarations[0] if len(declarations) == 1 else None


def _correct_values(declaration: etree._Element) -> list[str]:
    """The qti-value texts of the correct response (none = unscorable)."""
    correct = _child(declaration, "qti-correct-response")
    return [] if correct is None else [v.text or "" for v in _children(correct, "qti-value")]


def _mapping(declaration: etree._Element) -> list[tuple[str, str]] | None:
    """(map-key, mapped-value) pairs, or None when there is no mapping."""
    mapping = _child(declaration, "qti-mapping")
    if mapping is None:
        return None
    entries = _children(mapping, "qti-map-entry")
    return [(e.get("map-key") or "", e.get("mapped-value") or "0") for e in entries]


def _choices(item: _Item, parent: etree._Element, tag: str) -> list[dict]:
    """Choices as canonical {id, html} in document order."""
    return [
        {"id": _decode_id(choice.get("identifier")), "html": _choice_html(choice, item.strip)}
        for choice in _descendants(parent, tag)
    ]


def _choice_html(choice: etree._Element, strip: bool) -> str:
    """A choice's HTML without inline feedback (the engine has none)."""
    for feedback in _descendants(choice, "qti-feedback-inline"):
        _remove(feedback)
    return _inner_html(choice, strip=strip)


def _partial_credit(item: _Item, interaction: etree._Element, declaration: etree._Element):
    """Return the scoring dict for partial credit, or None (all-or-nothing)."""
    flag = interaction.get("data-partial-credit")
    if flag is not None:
        return {"partial_credit": flag == "true"}
    processing = _child(item.root, "qti-response-processing")
    template = (processing.get("template") or "") if processing is not None else ""
    if _mapping(declaration) is not None and "map_response" in template:
        return {"partial_credit": True}
    return None


def _read_choice(item: _Item, interaction, declaration, values: list[str]) -> tuple | None:
    """Choice interaction: true/false, single choice or multiple response by cardinality."""
    ids = [_decode_id(value) for value in values]
    if "tc-true-false" in _classes(interaction):
        if ids not in (["true"], ["false"]):
            item.problem("true/false correct response must be 'true' or 'false'")
            return None
        return "true_false", {"key": ids == ["true"]}
    options = _choices(item, interaction, "qti-simple-choice")
    if declaration.get("cardinality") == "single":
        if len(ids) != 1:
            item.problem("single-choice correct response must have one value")
            return None
        return "single_choice", {"options": options, "key": ids[0]}
    fields: dict[str, Any] = {"options": options, "key": ids}
    scoring = _partial_credit(item, interaction, declaration)
    if scoring is not None:
        fields["scoring"] = scoring
    return "multiple_response", fields


def _read_order(item: _Item, interaction, declaration, values: list[str]) -> tuple | None:
    """Order interaction: the full order is the key, star from data-*."""
    fields: dict[str, Any] = {
        "options": _choices(item, interaction, "qti-simple-choice"),
        "key": [_decode_id(value) for value in values],
    }
    star = interaction.get("data-star-position")
    if star is not None:
        try:
            fields["scoring"] = {"star_position": int(star)}
        except ValueError:
            item.problem(f"data-star-position {star!r} is not a whole number")
            return None
    return "ordering", fields


def _read_text_entry(item: _Item, interaction, declaration, values: list[str]) -> tuple | None:
    """Text entry: answers and credits from the mapping, else the correct response."""
    answers = []
    for key, value in _mapping(declaration) or []:
        try:
            credit = float(value)
        except ValueError:
            item.problem(f"mapped value {value!r} is not a number")
            return None
        if credit > 0:
            answers.append({"value": key, "credit": credit})
    if values[0] not in [answer["value"] for answer in answers]:
        answers.insert(0, {"value": values[0], "credit": 1.0})
    key: dict[str, Any] = {"answers": answers}
    kana = interaction.get("data-kana-equivalent")
    if kana is not None:
        key["normalize"] = {"kana": kana == "true"}
    fields: dict[str, Any] = {"key": key}
    length = interaction.get("expected-length")
    if length is not None:
        try:
            fields["max_length"] = int(length)
        except ValueError:
            item.problem(f"expected-length {length!r} is not a whole number")
            return None
    return "text_entry", fields


def _read_match(item: _Item, interaction, declaration, values: list[str]) -> tuple | None:
    """Match interaction: first set = prompts, second = choices, directedPair key."""
    sets = _children(interaction, "qti-simple-match-set")
    if len(sets) != 2:
        item.problem("match interaction needs exactly two qti-simple-match-set")
        return None
    prompts = _choices(item, sets[0], "qti-simple-associable-choice")
    choices = _choices(item, sets[1], "qti-simple-associable-choice")
    prompt_ids = {prompt["id"] for prompt in prompts}
    key = {}
    for value in values:
        pair = [_decode_id(part) for part in value.split()]
        if len(pair) != 2:
            item.problem(f"correct response {value!r} is not a pair")
            return None
        source, target = pair if pair[0] in prompt_ids else pair[::-1]
        key[source] = target
    fields: dict[str, Any] = {"prompts": prompts, "choices": choices, "key": key}
    scoring = _partial_credit(item, interaction, declaration)
    if scoring is not None:
        fields["scoring"] = scoring
    return "matching", fields


_READERS: dict[str, Callable[..., tuple | None]] = {
    "qti-choice-interaction": _read_choice,
    "qti-order-interaction": _read_order,
    "qti-text-entry-interaction": _read_text_entry,
    "qti-match-interaction": _read_match,
}


def _pop_explanations(item: _Item, body: etree._Element) -> dict[str, str]:
    """Tutor rubric blocks become the explanation (plain text, as the engine stores it);
    other rubric blocks are dropped."""
    explanation = {}
    for block in _descendants(body, "qti-rubric-block"):
        if "tutor" in (block.get("view") or "").split():
            content = _child(block, "qti-content-body")
            language = block.get(XML_LANG) or item.root.get(XML_LANG) or "und"
            text = "".join((content if content is not None else block).itertext())
            explanation[language] = text.strip() if item.strip else text
        _remove(block)
    return explanation


def _pop_audio(body: etree._Element) -> etree._Element | None:
    """The item's (or stimulus's) own audio is an <audio>/<object> child of the body."""
    for element in body:
        name = _local(element)
        if name == "audio" or (
            name == "object" and (element.get("type") or "").startswith("audio/")
        ):
            _remove(element)
            return element
    return None


def _audio_src(audio: etree._Element) -> str:
    """The audio file of <audio src>, <audio><source src> or <object data>."""
    if _local(audio) == "object":
        return audio.get("data") or ""
    source = _child(audio, "source")
    return audio.get("src") or (source.get("src") if source is not None else "") or ""


def _read_stimulus_ref(item: _Item, document: dict) -> None:
    """Link the item to its stimulus, loading a stimulus file the manifest did not list."""
    references = _children(item.root, "qti-assessment-stimulus-ref")
    if len(references) > 1:
        item.problem("has more than one stimulus; only one is supported")
    if not references:
        return
    ref = _decode_id(references[0].get("identifier"))
    document["stimulus"] = ref
    if ref in item.reader.stimuli:
        return
    target = _resolve(item.path, references[0].get("href") or "")
    if target is None or not item.reader.files.exists(target):
        item.problem(f"stimulus {ref} is not in the package")
        return
    _read_file(item.reader, target, None, "stimulus")


def _remove_interaction(interaction: etree._Element, container: etree._Element) -> None:
    """Take the interaction out of the body, leaving its blank or prompt in the stem."""
    if _local(interaction) == "qti-text-entry-interaction":
        blank = interaction.get("data-blank")
        if blank is None:
            blank = BLANK if _has_content_after(interaction, container) else ""
        parent = interaction.getparent()
        _remove(interaction, blank)
        if parent is not container and not (parent.text or "").strip() and not len(parent):
            _remove(parent)
        return
    prompt = _child(interaction, "qti-prompt")
    if prompt is not None:
        interaction.addprevious(prompt)
        if any(_local(child) in BLOCK_TAGS for child in prompt):
            _unwrap(prompt)
        else:
            prompt.tag, prompt.tail = _q("p"), None
            prompt.attrib.clear()
    _remove(interaction)


def _read_stem(body: etree._Element, stem_div: etree._Element | None) -> str:
    """Our stem is the tc-stem div; a foreign stem is the rest of the body."""
    if stem_div is not None:
        return _inner_html(stem_div)
    for element in list(body.iter()):
        if element is not body and _local(element).startswith("qti-"):
            _remove(element)
    return _inner_html(body, strip=True)


def _read_stimulus(
    reader: _Reader, path: str, root: etree._Element, extension: dict | None
) -> dict:
    """Return the canonical document of a qti-assessment-stimulus."""
    item = _Item(reader, path, _decode_id(root.get("identifier")) or "?", root)
    document: dict[str, Any] = {"ref": item.identifier}
    body = _child(root, "qti-stimulus-body")
    if body is None:
        item.problem("stimulus has no qti-stimulus-body")
        return document
    _collect_media(item, body)
    audio = _pop_audio(body)
    div = next((c for c in body if "tc-stimulus" in _classes(c)), None)
    html = _inner_html(div) if div is not None else _inner_html(body, strip=True)
    if div is not None or html:
        document["html"] = html
    _apply_audio(item, document, audio, extension)
    if extension is None:
        document["kind"] = root.get("data-kind") or ""
    _apply_metadata(document, extension, root, STIMULUS_BODY_FIELDS)
    return _ordered(document, STIMULUS_FIELD_ORDER)


# --------------------------------------------------------------------------- writing


def _q(name: str) -> str:
    """A name in the QTI 3 namespace (HTML inside QTI 3 bodies lives there too)."""
    return f"{{{QTI3_NS}}}{name}"


def _sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    """Add a QTI-namespace child; keyword names use _ for - (max_choices -> max-choices)."""
    return etree.SubElement(
        parent, _q(name), {k.replace("_", "-"): v for k, v in attributes.items()}
    )


@dataclass
class _Interaction:
    """What a type contributes to an item: declaration, interaction, scoring template."""

    declaration: etree._Element
    element: etree._Element
    template: str


def _declaration(cardinality: str, base_type: str, correct: list[str]) -> etree._Element:
    """A RESPONSE declaration with its correct response."""
    declaration = etree.Element(
        _q("qti-response-declaration"),
        {"identifier": "RESPONSE", "cardinality": cardinality, "base-type": base_type},
    )
    response = _sub(declaration, "qti-correct-response")
    for value in correct:
        _sub(response, "qti-value").text = value
    return declaration


def _add_mapping(
    declaration: etree._Element, entries: list[tuple[str, float]], **extra: str
) -> None:
    """Add a qti-mapping; lower bound 0 so wrong choices never score below zero."""
    mapping = _sub(declaration, "qti-mapping", lower_bound="0", default_value="0")
    for key, value in entries:
        _sub(mapping, "qti-map-entry", map_key=key, mapped_value=repr(float(value)), **extra)


def _add_choices(
    parent: etree._Element, tag: str, choices: list, encode: Callable[[Any], str] = _encode_id
) -> None:
    """Add one choice element per canonical {id, html}."""
    for choice in choices:
        element = _sub(parent, tag, identifier=encode(choice["id"]))
        _html_into(element, str(choice.get("html", "")))


def _partial_flag(document: Mapping, interaction: etree._Element) -> bool:
    """Write an explicit partial_credit as data-partial-credit; return whether it is on."""
    scoring = document.get("scoring") or {}
    if "partial_credit" not in scoring:
        return False
    interaction.set("data-partial-credit", "true" if scoring["partial_credit"] else "false")
    return bool(scoring["partial_credit"])


def _build_single_choice(document: Mapping) -> _Interaction:
    """single_choice: choice interaction, one correct identifier."""
    declaration = _declaration("single", "identifier", [_encode_id(document["key"])])
    interaction = etree.Element(
        _q("qti-choice-interaction"),
        {"response-identifier": "RESPONSE", "shuffle": "true", "max-choices": "1"},
    )
    _add_choices(interaction, "qti-simple-choice", document["options"])
    return _Interaction(declaration, interaction, "match_correct")


def _build_multiple_response(document: Mapping) -> _Interaction:
    """multiple_response: mapping only when partial credit is on."""
    key = [str(k) for k in document["key"]]
    declaration = _declaration("multiple", "identifier", [_encode_id(k) for k in key])
    interaction = etree.Element(
        _q("qti-choice-interaction"),
        {"response-identifier": "RESPONSE", "shuffle": "true", "max-choices": "0"},
    )
    _add_choices(interaction, "qti-simple-choice", document["options"])
    if not _partial_flag(document, interaction):
        return _Interaction(declaration, interaction, "match_correct")
    share = 1 / len(key)
    entries = [
        (_encode_id(o["id"]), share if str(o["id"]) in key else -share) for o in document["options"]
    ]
    _add_mapping(declaration, entries)
    return _Interaction(declaration, interaction, "map_response")


def _build_ordering(document: Mapping) -> _Interaction:
    """ordering: full order as correct response; star as data-*."""
    declaration = _declaration("ordered", "identifier", [_encode_id(k) for k in document["key"]])
    interaction = etree.Element(
        _q("qti-order-interaction"), {"response-identifier": "RESPONSE", "shuffle": "true"}
    )
    _add_choices(interaction, "qti-simple-choice", document["options"])
    star = (document.get("scoring") or {}).get("star_position")
    if star is not None:
        interaction.set("data-star-position", str(star))
    return _Interaction(declaration, interaction, "match_correct")


def _build_text_entry(document: Mapping) -> _Interaction:
    """Correct response = first full-credit answer; the mapping keeps every credit."""
    key = document["key"]
    answers = key["answers"]
    full = [a for a in answers if float(a.get("credit", 1.0)) == 1.0] or answers
    declaration = _declaration("single", "string", [str(full[0]["value"])])
    entries = [(str(a["value"]), float(a.get("credit", 1.0))) for a in answers]
    _add_mapping(declaration, entries, case_sensitive="false")
    interaction = etree.Element(
        _q("qti-text-entry-interaction"), {"response-identifier": "RESPONSE"}
    )
    if "max_length" in document:
        interaction.set("expected-length", str(document["max_length"]))
    normalize = key.get("normalize") or {}
    if "kana" in normalize:
        interaction.set("data-kana-equivalent", "true" if normalize["kana"] else "false")
    return _Interaction(declaration, interaction, "map_response")


def _build_matching(document: Mapping) -> _Interaction:
    """Prompt ids are force-encoded when they clash with choice ids (QTI needs unique)."""
    prompts, choices, key = document["prompts"], document["choices"], document["key"]
    clash = bool({str(p["id"]) for p in prompts} & {str(c["id"]) for c in choices})

    def encode_prompt(value: Any) -> str:
        """Encode a prompt id (forced when ids clash with choices)."""
        return _encode_id(value, force=clash)

    pairs = [f"{encode_prompt(p)} {_encode_id(c)}" for p, c in key.items()]
    declaration = _declaration("multiple", "directedPair", pairs)
    interaction = etree.Element(
        _q("qti-match-interaction"),
        {"response-identifier": "RESPONSE", "shuffle": "true"}
        | {"max-associations": str(len(prompts))},
    )
    prompt_set = _sub(interaction, "qti-simple-match-set")
    _add_choices(prompt_set, "qti-simple-associable-choice", prompts, encode_prompt)
    for element in prompt_set:
        element.set("match-max", "1")
    choice_set = _sub(interaction, "qti-simple-match-set")
    _add_choices(choice_set, "qti-simple-associable-choice", choices)
    for element in choice_set:
        element.set("match-max", str(len(prompts)))
    if not _partial_flag(document, interaction):
        return _Interaction(declaration, interaction, "match_correct")
    _add_mapping(declaration, [(pair, 1 / len(prompts)) for pair in pairs])
    return _Interaction(declaration, interaction, "map_response")


def _build_true_false(document: Mapping) -> _Interaction:
    """true_false: a two-choice interaction marked tc-true-false."""
    if not isinstance(document["key"], bool):
        raise ValueError("true_false key must be true or false")
    declaration = _declaration("single", "identifier", ["true" if document["key"] else "false"])
    interaction = etree.Element(
        _q("qti-choice-interaction"),
        {"response-identifier": "RESPONSE", "shuffle": "false", "max-choices": "1"}
        | {"class": "tc-true-false"},
    )
    _sub(interaction, "qti-simple-choice", identifier="true").text = "True"
    _sub(interaction, "qti-simple-choice", identifier="false").text = "False"
    return _Interaction(declaration, interaction, "match_correct")


_BUILDERS: dict[str, Callable[[Mapping], _Interaction]] = {
    "single_choice": _build_single_choice,
    "multiple_response": _build_multiple_response,
    "ordering": _build_ordering,
    "text_entry": _build_text_entry,
    "matching": _build_matching,
    "true_false": _build_true_false,
}


def _place_blank(stem: etree._Element, interaction: etree._Element) -> None:
    """Put the text entry where the stem's first blank is, else at the end of the stem."""
    for node, slot in _text_slots(stem):
        text = getattr(node, slot) or ""
        match = BLANK_RE.search(text)
        if match is None:
            continue
        interaction.set("data-blank", match.group())
        setattr(node, slot, text[: match.start()])
        interaction.tail = text[match.end() :]
        if slot == "text":
            node.insert(0, interaction)
        else:
            node.addnext(interaction)
        return
    stem.append(interaction)


def _add_audio(body: etree._Element, src: str, play_limit: Any) -> None:
    """HTML5 audio; data-play-limit tells players the per-attempt plays."""
    audio = _sub(body, "audio", src=str(src), controls="controls")
    audio.set("data-play-limit", str(play_limit if play_limit is not None else 1))


def _safe_name(ref: str, taken: set[str]) -> str:
    """A file name from a ref: ASCII-safe and unique within the package."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", ref).strip(".") or "item"
    name, counter = base, 1
    while name.lower() in taken:
        counter += 1
        name = f"{base}-{counter}"
    taken.add(name.lower())
    return name


def _media_key(path: str) -> str:
    """Normalised media path, so 'media/./x' and 'media/x' are one file."""
    return posixpath.normpath(path)


@dataclass
class _Writer:
    """State of one export: files written, manifest resources and problems."""

    bundle: Bundle
    problems: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    resources: list[etree._Element] = field(default_factory=list)
    stimulus_files: dict[str, tuple[str, str]] = field(default_factory=dict)
    used_media: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        """Normalise media keys the same way references are normalised."""
        self.media = {_media_key(path): data for path, data in self.bundle.media.items()}

    def add_stimulus(self, document: Mapping) -> None:
        """Add one stimulus file and resource (before items refer to it)."""
        if not isinstance(document, Mapping):
            self.problems.append("a stimulus must be a mapping")
            return
        ref = str(document.get("ref") or "")
        if not ref or ref in self.stimulus_files:
            self.problems.append(f"stimulus {ref or '?'}: missing or duplicate ref")
            return
        path = f"stimuli/{_safe_name(ref, self.names)}.xml"
        identifier = f"stimulus-{_encode_id(ref)}"
        self.stimulus_files[ref] = (path, identifier)
        try:
            root = _stimulus_xml(document)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.problems.append(f"{path}: stimulus {ref}: cannot be exported ({error!r})")
            return
        meta = {k: v for k, v in document.items() if k not in STIMULUS_BODY_FIELDS}
        self._add_resource(path, identifier, STIMULUS_RESOURCE, root, ("stimulus", meta), [])

    def add_item(self, document: Mapping) -> None:
        """Add one item file and resource; problems are collected, not raised."""
        if not isinstance(document, Mapping):
            self.problems.append("an item must be a mapping")
            return
        ref = str(document.get("ref") or "")
        path = f"items/{_safe_name(ref, self.names)}.xml"
        label = f"{path}: item {ref or '?'}"
        try:
            root = _item_xml(document, path)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            self.problems.append(f"{label}: cannot be exported ({error!r})")
            return
        dependencies = []
        if document.get("stimulus") is not None:
            dependencies = self._link_stimulus(root, str(document["stimulus"]), path, label)
        meta = {k: v for k, v in document.items() if k not in ITEM_BODY_FIELDS}
        identifier = f"item-{_encode_id(ref)}"
        self._add_resource(path, identifier, ITEM_RESOURCE, root, ("item", meta), dependencies)

    def _link_stimulus(self, root: etree._Element, ref: str, path: str, label: str) -> list[str]:
        """Reference the stimulus file from the item and depend on it."""
        if ref not in self.stimulus_files:
            self.problems.append(f"{label}: stimulus {ref} is not in the bundle")
            return []
        stimulus_path, identifier = self.stimulus_files[ref]
        reference = etree.Element(
            _q("qti-assessment-stimulus-ref"),
            {"identifier": _encode_id(ref), "href": _relative_href(stimulus_path, path)},
        )
        reference.set("title", ref)
        _child(root, "qti-item-body").addprevious(reference)
        return [identifier]

    def _add_resource(
        self,
        path: str,
        identifier: str,
        kind: str,
        root: etree._Element,
        metadata: tuple[str, dict],
        dependencies: list[str],
    ) -> None:
        """Serialise one XML file and describe it (metadata, files) in the manifest."""
        label = f"{path}: {metadata[0]} {root.get('title')}"
        media = self._rewrite_media(root, path, label)
        resource = etree.Element(
            f"{{{CP_NS}}}resource", {"identifier": identifier, "type": kind, "href": path}
        )
        holder = etree.SubElement(resource, f"{{{CP_NS}}}metadata")
        extension = etree.SubElement(holder, f"{{{TC_NS}}}{metadata[0]}", nsmap={"tc": TC_NS})
        try:
            extension.text = json.dumps(metadata[1], ensure_ascii=False)
        except (TypeError, ValueError) as error:
            self.problems.append(f"{label}: metadata is not JSON-serialisable ({error})")
        for href in [path, *media]:
            etree.SubElement(resource, f"{{{CP_NS}}}file", href=quote(href, safe="/"))
        for dependency in dependencies:
            etree.SubElement(resource, f"{{{CP_NS}}}dependency", identifierref=dependency)
        _indent(root)
        self.files[path] = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        self.resources.append(resource)

    def _rewrite_media(self, root: etree._Element, path: str, label: str) -> list[str]:
        """Make media references relative to the XML file; every file must be in media."""
        used = []
        for element in root.iter():
            attribute = "data" if _local(element) == "object" else "src"
            href = element.get(attribute) if isinstance(element.tag, str) else None
            if not href or _is_external(href):
                continue
            target = _media_key(href)
            if target.startswith("../") or target == "..":
                self.problems.append(f"{label}: media path {href} points outside the package")
            elif target not in self.media:
                self.problems.append(f"{label}: media file {href} is missing from the bundle")
            elif target == MANIFEST or target.startswith(("items/", "stimuli/")):
                self.problems.append(f"{label}: media path {href} clashes with package files")
            else:
                element.set(attribute, _relative_href(target, path))
                used.append(target)
        self.used_media.update(used)
        return list(dict.fromkeys(used))

    def manifest(self) -> bytes:
        """The IMS CP manifest: one resource per XML file, media as their file entries."""
        manifest = etree.Element(
            f"{{{CP_NS}}}manifest",
            {"identifier": "MANIFEST-testing-center"},
            nsmap={None: CP_NS, "xsi": XSI_NS},
        )
        manifest.set(f"{{{XSI_NS}}}schemaLocation", f"{CP_NS} {CP_XSD}")
        metadata = etree.SubElement(manifest, f"{{{CP_NS}}}metadata")
        etree.SubElement(metadata, f"{{{CP_NS}}}schema").text = "QTI Package"
        etree.SubElement(metadata, f"{{{CP_NS}}}schemaversion").text = "3.0.0"
        etree.SubElement(manifest, f"{{{CP_NS}}}organizations")
        resources = etree.SubElement(manifest, f"{{{CP_NS}}}resources")
        resources.extend(self.resources)
        for number, path in enumerate(sorted(set(self.media) - self.used_media), start=1):
            extra = etree.SubElement(
                resources,
                f"{{{CP_NS}}}resource",
                identifier=f"media-{number}",
                type="webcontent",
                href=quote(path, safe="/"),
            )
            etree.SubElement(extra, f"{{{CP_NS}}}file", href=quote(path, safe="/"))
        _indent(manifest)
        return etree.tostring(manifest, xml_declaration=True, encoding="UTF-8")


def _item_root(document: Mapping, name: str) -> etree._Element:
    """Root element shared by items and stimuli: identifier, title, xml:lang."""
    ref = str(document["ref"])
    root = etree.Element(_q(name), nsmap={None: QTI3_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{QTI3_NS} {QTI3_XSD}")
    root.set("identifier", _encode_id(ref))
    root.set("title", ref)
    root.set(XML_LANG, str(document.get("language") or "ja"))
    return root


def _item_xml(document: Mapping, path: str) -> etree._Element:
    """Build the qti-assessment-item for one canonical document."""
    item_type = document.get("type")
    if item_type not in _BUILDERS:
        raise ValueError(f"unknown item type {item_type!r}")
    built = _BUILDERS[item_type](document)
    root = _item_root(document, "qti-assessment-item")
    root.set("adaptive", "false")
    root.set("time-dependent", "false")
    root.append(built.declaration)
    _sub(
        root, "qti-outcome-declaration", identifier="SCORE", cardinality="single", base_type="float"
    )
    body = _sub(root, "qti-item-body")
    if document.get("audio"):
        _add_audio(body, document["audio"], document.get("play_limit"))
    stem = _sub(body, "div", **{"class": "tc-stem"})
    _html_into(stem, str(document.get("stem") or ""))
    if item_type == "text_entry":
        _place_blank(stem, built.element)
    else:
        body.append(built.element)
    for language, text in (document.get("explanation") or {}).items():
        block = _sub(body, "qti-rubric-block", view="tutor")
        block.set(XML_LANG, str(language))
        _sub(_sub(block, "qti-content-body"), "p").text = str(text)
    _sub(root, "qti-response-processing", template=RP_TEMPLATE.format(built.template))
    return root


def _stimulus_xml(document: Mapping) -> etree._Element:
    """Build the qti-assessment-stimulus for one canonical stimulus document."""
    root = _item_root(document, "qti-assessment-stimulus")
    if document.get("kind") is not None:
        root.set("data-kind", str(document["kind"]))
    body = _sub(root, "qti-stimulus-body")
    if document.get("audio"):
        _add_audio(body, document["audio"], document.get("play_limit"))
    if "html" in document:
        _html_into(_sub(body, "div", **{"class": "tc-stimulus"}), str(document["html"] or ""))
    return root


def write_qti_package(bundle: Bundle, out: Path) -> None:
    """Write ``bundle`` as a QTI 3.0 content package zip at ``out``.

    Nothing is written unless every document can be exported; otherwise ``InvalidItem``
    lists every problem (unknown type, missing media, unknown stimulus, ...).
    """
    writer = _Writer(bundle)
    for stimulus in bundle.stimuli:
        writer.add_stimulus(stimulus)
    refs = [str(item.get("ref")) for item in bundle.items if isinstance(item, Mapping)]
    for ref in sorted({ref for ref in refs if refs.count(ref) > 1}):
        writer.problems.append(f"item {ref}: appears more than once in the bundle")
    for item in bundle.items:
        writer.add_item(item)
    if writer.problems:
        raise InvalidItem(writer.problems)
    files = {MANIFEST: writer.manifest(), **writer.files}
    files.update({path: writer.media[path] for path in sorted(writer.media)})
    _write_zip(files, Path(out), stored=set(writer.media))


def _write_zip(files: dict[str, bytes], out: Path, stored: set[str]) -> None:
    """Deterministic zip; media stored uncompressed (already compressed, and no bomb-like
    ratios that our own reader would refuse)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    out.write_bytes(buffer.getvalue())


__all__ = ["Bundle", "read_qti", "write_qti_package"]
