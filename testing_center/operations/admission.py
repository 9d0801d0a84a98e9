"""Admission tickets: the one-page PDF a candidate prints and brings to the test centre.

The ticket shows the admission number (large, and as a QR code that encodes the number
and nothing else, for the check-in form), the candidate as on the ID document with the
document number masked but for its last characters (a lost ticket must not give the
number away), the photo if one exists, the session in the centre's time zone, the
centre's address, and the rules of the day (FIELD.md) in the candidate's language and in
English. Labels are translated in the candidate's language with English beneath.

``ticket_for`` gathers and translates (database, Flask-Babel); ``render_ticket`` turns
that plain data into PDF bytes and touches neither.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from babel import Locale
from babel.dates import format_date
from flask import current_app
from flask_babel import force_locale, gettext
from PIL import Image as PILImage
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    Image,
    KeepInFrame,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from certificates import fonts
from exam_templates.blueprint import parse_blueprint
from testing_center.accounts.models import CandidateProfile
from testing_center.attempts.presenters import localized
from testing_center.i18n import N_
from testing_center.operations.models import Booking, CandidatePhoto
from testing_center.operations.services import local_time

logger = logging.getLogger(__name__)

ENGLISH = "en"
EARLIEST_ARRIVAL = dt.timedelta(minutes=30)  # FIELD.md: arrive 15-30 minutes early
LATEST_ARRIVAL = dt.timedelta(minutes=15)
VISIBLE_ID_CHARACTERS = 4
QR_LEVEL = "M"  # survives a crease or a smudge on a printed ticket (15 % of the symbol)

LABELS = {
    "title": N_("Admission ticket"),
    "admission_number": N_("Admission number"),
    "show_at_check_in": N_("Show this number or the QR code at check-in."),
    "candidate": N_("Candidate"),
    "full_name": N_("Full name (as on the ID document)"),
    "date_of_birth": N_("Date of birth"),
    "nationality": N_("Nationality"),
    "id_document": N_("ID document number"),
    "session": N_("Exam session"),
    "date_time": N_("Date and time"),
    "centre": N_("Test centre"),
    "address": N_("Address"),
    "room": N_("Room"),
    "seat": N_("Seat"),
    "photo_at_check_in": N_("Photo taken at check-in"),
    "rules": N_("Rules"),
}
RULES = (
    N_("Arrive 15 to 30 minutes before the start: between %(earliest)s and %(latest)s."),
    N_("Late arrivals are refused: no one is admitted after %(cutoff)s."),
    N_("Bring your original ID document and this ticket."),
    N_("The name on your ID document must match the name on this ticket exactly."),
    N_(
        "Phones, other electronic devices and notes are not allowed in the exam room: "
        "leave them in your locker."
    ),
    N_("At check-in the proctor compares your face with your photo and your ID document."),
)

# layout
PAGE_MARGIN = 15 * mm
PHOTO_WIDTH, PHOTO_HEIGHT = 35 * mm, 45 * mm
PHOTO_MAX_PIXELS = (480, 620)  # about 350 dpi at 35 x 45 mm: sharp in print, small file
QR_SIZE = 34 * mm
LABEL_WIDTH = 48 * mm
GREY = colors.HexColor("#555555")
RULE_COLOUR = colors.HexColor("#999999")


@dataclass(frozen=True)
class Label:
    """A label in the candidate's language and in English (``None`` when the same)."""

    text: str
    english: str | None = None


@dataclass(frozen=True)
class Ticket:
    """Everything printed on a ticket, already translated: plain data, no ORM objects."""

    locale: str
    admission_number: str
    exam_title_ja: str | None
    exam_title_en: str
    full_name: str
    date_of_birth: str
    nationality: str
    id_document_masked: str
    starts_local: str  # "2026-12-03 14:00 +05 (Asia/Tashkent)"
    starts_long: str  # the date written out in the candidate's language
    centre_name: str
    centre_address: str
    room: str | None
    seat: str | None
    photo_jpeg: bytes | None
    labels: dict[str, Label]
    rules: tuple[str, ...]
    rules_english: tuple[str, ...]  # empty when the same (English, or not translated yet)


def admission_ticket_pdf(session: Session, booking: Booking) -> bytes:
    """Return the admission ticket of ``booking`` as a one-page A4 PDF."""
    return render_ticket(ticket_for(session, booking))


# ---- gathering ------------------------------------------------------------------------


def ticket_for(session: Session, booking: Booking) -> Ticket:
    """Collect and translate what the ticket of ``booking`` shows (needs an app context)."""
    exam_session = booking.session
    centre = exam_session.centre
    user = booking.user
    locale = user.locale if user.locale in current_app.config["LANGUAGES"] else ENGLISH
    profile = session.get(CandidateProfile, user.id)
    title = parse_blueprint(exam_session.template.definition).title
    zone = zoneinfo.ZoneInfo(centre.timezone)
    starts = exam_session.starts_at.astimezone(zone)
    times = {
        "earliest": f"{starts - EARLIEST_ARRIVAL:%H:%M}",
        "latest": f"{starts - LATEST_ARRIVAL:%H:%M}",
        "cutoff": f"{starts + dt.timedelta(minutes=exam_session.late_minutes):%H:%M}",
    }
    rules = translate_all(RULES, locale, times)
    rules_english = translate_all(RULES, ENGLISH, times)
    return Ticket(
        locale=locale,
        admission_number=booking.admission_number,
        exam_title_ja=title.get("ja"),
        exam_title_en=localized(title, ENGLISH),
        full_name=profile.full_name if profile else user.email,
        date_of_birth=profile.date_of_birth.isoformat() if profile else "",
        nationality=nationality_name(profile.nationality, locale) if profile else "",
        id_document_masked=mask(profile.id_document_number) if profile else "",
        starts_local=f"{local_time(exam_session)} ({centre.timezone})",
        starts_long=format_date(starts.date(), format="full", locale=locale),
        centre_name=centre.name,
        centre_address=centre.address,
        room=exam_session.room.name if exam_session.room else None,
        seat=booking.seat,
        photo_jpeg=ticket_photo(latest_photo(session, user.id)),
        labels={key: label(message, locale) for key, message in LABELS.items()},
        rules=rules,
        rules_english=() if rules_english == rules else rules_english,
    )


def translate(message: str, locale: str, **params: str) -> str:
    with force_locale(locale):
        return gettext(message, **params)


def translate_all(messages: Sequence[str], locale: str, params: dict[str, str]) -> tuple[str, ...]:
    return tuple(translate(message, locale, **params) for message in messages)


def label(message: str, locale: str) -> Label:
    text = translate(message, locale)
    english = translate(message, ENGLISH)
    return Label(text, None if english == text else english)


def mask(document_number: str) -> str:
    """Hide all but the last characters: at most 4, and never more than half."""
    visible = min(VISIBLE_ID_CHARACTERS, len(document_number) // 2)
    hidden = len(document_number) - visible
    return "*" * hidden + document_number[hidden:]


def nationality_name(code: str, locale: str) -> str:
    """``Uzbekistan (UZ)``, the country named in the candidate's language."""
    name = Locale.parse(locale).territories.get(code.upper())
    return f"{name} ({code.upper()})" if name else code.upper()


def latest_photo(session: Session, user_id: int) -> CandidatePhoto | None:
    return session.scalar(
        select(CandidatePhoto)
        .where(CandidatePhoto.user_id == user_id)
        .order_by(CandidatePhoto.taken_at.desc(), CandidatePhoto.id.desc())
        .limit(1)
    )


def ticket_photo(photo: CandidatePhoto | None) -> bytes | None:
    """The photo as a JPEG small enough for the ticket, or ``None`` if it cannot be read."""
    if photo is None:
        return None
    try:
        with PILImage.open(io.BytesIO(photo.data)) as image:
            image.thumbnail(PHOTO_MAX_PIXELS)
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except (OSError, PILImage.DecompressionBombError):
        logger.warning("photo %s cannot be read; the ticket shows the empty frame", photo.id)
        return None
    return buffer.getvalue()


# ---- rendering ------------------------------------------------------------------------


def render_ticket(ticket: Ticket) -> bytes:
    """Lay ``ticket`` out on one A4 page (shrunk to fit if a text is very long)."""
    fonts.register_fonts()
    styles = Styles(ticket.locale)
    width, height = A4[0] - 2 * PAGE_MARGIN, A4[1] - 2 * PAGE_MARGIN
    story: list[Flowable] = [
        *title_block(ticket, styles),
        Spacer(0, 5 * mm),
        admission_block(ticket, styles, width),
        Spacer(0, 5 * mm),
        candidate_block(ticket, styles, width),
        Spacer(0, 5 * mm),
        session_block(ticket, styles, width),
        Spacer(0, 5 * mm),
        *rules_block(ticket, styles),
    ]
    missing = fonts.missing_characters(
        " ".join([ticket.full_name, ticket.centre_name, ticket.centre_address])
    )
    if missing:  # the count only: names are personal data
        logger.warning("admission ticket: %d characters without a glyph", len(missing))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=PAGE_MARGIN,
        rightMargin=PAGE_MARGIN,
        topMargin=PAGE_MARGIN,
        bottomMargin=PAGE_MARGIN,
        title=f"{ticket.labels['title'].text} {ticket.admission_number}",
        creator="testing-center",
        initialFontName=fonts.SANS,
    )
    document.build([KeepInFrame(width, height, story, mode="shrink")])
    return buffer.getvalue()


class Styles:
    """The paragraph styles of the ticket; Japanese text wraps between any characters."""

    def __init__(self, locale: str) -> None:
        wrap = "CJK" if locale == "ja" else None
        base = ParagraphStyle("base", fontName=fonts.SANS, fontSize=10, leading=13)
        self.title = ParagraphStyle("title", base, fontSize=20, leading=24, wordWrap=wrap)
        self.title_english = ParagraphStyle("title_en", base, fontSize=11, textColor=GREY)
        self.exam_ja = ParagraphStyle("exam_ja", base, fontSize=15, leading=19, wordWrap="CJK")
        self.exam_en = ParagraphStyle("exam_en", base, fontSize=12, leading=15)
        self.number = ParagraphStyle("number", base, fontSize=24, leading=30)
        self.text = ParagraphStyle("text", base, wordWrap=wrap)
        self.value = ParagraphStyle("value", base, fontSize=11, leading=14)
        self.small = ParagraphStyle("small", base, fontSize=8, leading=10, textColor=GREY)
        self.heading = ParagraphStyle("heading", base, fontSize=12, leading=15, wordWrap=wrap)
        self.rule = ParagraphStyle(
            "rule",
            base,
            fontSize=9.5,
            leading=12.5,
            leftIndent=5 * mm,
            firstLineIndent=-4 * mm,
            spaceAfter=1,
            wordWrap=wrap,
        )
        self.rule_english = ParagraphStyle(
            "rule_en", self.rule, fontSize=8.5, leading=11, textColor=GREY, wordWrap=None
        )
        self.centred = ParagraphStyle("centred", self.small, alignment=TA_CENTER, wordWrap=wrap)


def para(text: str, style: ParagraphStyle, bold: bool = False) -> Paragraph:
    return Paragraph(fonts.markup(text, bold), style)


def label_cell(item: Label, style: ParagraphStyle) -> Paragraph:
    """The label in bold, and in English beneath in small grey type when it differs."""
    text = fonts.markup(item.text, bold=True)
    if item.english:
        text += f'<br/><font size="7.5" color="#555555">{fonts.markup(item.english)}</font>'
    return Paragraph(text, style)


def title_block(ticket: Ticket, styles: Styles) -> list[Flowable]:
    title = ticket.labels["title"]
    blocks: list[Flowable] = [para(title.text, styles.title, bold=True)]
    if title.english:
        blocks.append(para(title.english, styles.title_english))
    blocks.append(Spacer(0, 3 * mm))
    if ticket.exam_title_ja:
        blocks.append(para(ticket.exam_title_ja, styles.exam_ja, bold=True))
    if ticket.exam_title_en != ticket.exam_title_ja:
        blocks.append(para(ticket.exam_title_en, styles.exam_en))
    return blocks


def qr_drawing(value: str, size: float = QR_SIZE) -> Drawing:
    """The QR code of ``value`` alone, with its quiet zone of 4 modules."""
    widget = QrCodeWidget(value, barWidth=size, barHeight=size, barLevel=QR_LEVEL, barBorder=4)
    drawing = Drawing(size, size, initialFontName=fonts.SANS)  # no Helvetica resource
    drawing.add(widget)
    return drawing


def table(rows: list[list], widths: list[float], commands: Sequence[tuple], **options) -> Table:
    """A table whose own font is embedded too (ReportLab's default cell font is Helvetica)."""
    result = Table(rows, colWidths=widths, **options)
    result.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), fonts.SANS), *commands]))
    return result


def boxed(rows: list[list], widths: list[float], padding: float = 3 * mm) -> Table:
    return table(
        rows,
        widths,
        [
            ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3 * mm),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3 * mm),
            ("TOPPADDING", (0, 0), (-1, -1), padding),
            ("BOTTOMPADDING", (0, 0), (-1, -1), padding),
        ],
    )


def admission_block(ticket: Ticket, styles: Styles, width: float) -> Table:
    left = [
        label_cell(ticket.labels["admission_number"], styles.text),
        Spacer(0, 2 * mm),
        para(ticket.admission_number, styles.number, bold=True),
        Spacer(0, 2 * mm),
        para(ticket.labels["show_at_check_in"].text, styles.text),
    ]
    qr_width = QR_SIZE + 6 * mm
    return boxed(
        [[left, qr_drawing(ticket.admission_number)]], [width - qr_width, qr_width], 2 * mm
    )


def details_table(rows: list[tuple[Label, str]], styles: Styles, width: float) -> Table:
    return table(
        [[label_cell(name, styles.text), para(value, styles.value)] for name, value in rows],
        [LABEL_WIDTH, width - LABEL_WIDTH],
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -2), 0.3, RULE_COLOUR),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
    )


def photo_flowable(ticket: Ticket, styles: Styles) -> Flowable:
    if ticket.photo_jpeg:
        with PILImage.open(io.BytesIO(ticket.photo_jpeg)) as image:
            pixel_width, pixel_height = image.size
        scale = min(PHOTO_WIDTH / pixel_width, PHOTO_HEIGHT / pixel_height)
        return Image(io.BytesIO(ticket.photo_jpeg), pixel_width * scale, pixel_height * scale)
    return table(
        [[para(ticket.labels["photo_at_check_in"].text, styles.centred)]],
        [PHOTO_WIDTH],
        [
            ("BOX", (0, 0), (-1, -1), 0.8, GREY),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (0, 0), (-1, -1), "CENTER"),
        ],
        rowHeights=[PHOTO_HEIGHT],
    )


def candidate_block(ticket: Ticket, styles: Styles, width: float) -> Table:
    labels = ticket.labels
    photo_width = PHOTO_WIDTH + 6 * mm
    inner = width - photo_width - 6 * mm
    rows = [
        (labels["full_name"], ticket.full_name),
        (labels["date_of_birth"], ticket.date_of_birth),
        (labels["nationality"], ticket.nationality),
        (labels["id_document"], ticket.id_document_masked),
    ]
    left = [
        label_cell(labels["candidate"], styles.heading),
        Spacer(0, 2 * mm),
        details_table(rows, styles, inner),
    ]
    return boxed([[left, photo_flowable(ticket, styles)]], [width - photo_width, photo_width])


def session_block(ticket: Ticket, styles: Styles, width: float) -> Table:
    labels = ticket.labels
    rows = [
        (labels["date_time"], f"{ticket.starts_local}\n{ticket.starts_long}"),
        (labels["centre"], ticket.centre_name),
        (labels["address"], ticket.centre_address),
    ]
    if ticket.room:
        rows.append((labels["room"], ticket.room))
    if ticket.seat:
        rows.append((labels["seat"], ticket.seat))
    inner = width - 6 * mm
    content = [
        label_cell(labels["session"], styles.heading),
        Spacer(0, 2 * mm),
        details_table(rows, styles, inner),
    ]
    return boxed([[content]], [width])


def rules_block(ticket: Ticket, styles: Styles) -> list[Flowable]:
    blocks: list[Flowable] = [label_cell(ticket.labels["rules"], styles.heading)]
    blocks.append(Spacer(0, 1.5 * mm))
    blocks += numbered(ticket.rules, styles.rule)
    if ticket.rules_english:
        blocks.append(Spacer(0, 2 * mm))
        blocks += numbered(ticket.rules_english, styles.rule_english)
    return blocks


def numbered(texts: Sequence[str], style: ParagraphStyle) -> list[Flowable]:
    return [para(f"{number}. {text}", style) for number, text in enumerate(texts, start=1)]
