"""Certificate and practice-report PDFs (reportlab): one A4 page from plain facts.

``render_certificate(facts, token, base_url)`` lays out a result certificate modelled on
the SSW/JFT result notification and the JLPT certificate: issuing centre, title, exam
title in Japanese and English, certificate number and issue date, the candidate (name as
on the ID, date of birth, nationality, photo), exam date and test centre, the score of
each scoring section with its minimum, the total on its scale, the pass rule, the
result and the level, a bar chart of the sections (reportlab.graphics shapes), and a QR
code of the short verification link ``<base_url>/verify?n=<number>&s=<signature>``
(``certificates.links``). Labels are Japanese with English beneath.

The token is also stored in the PDF metadata: the document-information entry
``/CertificateToken`` and the XMP property ``tc:token`` (namespace ``TOKEN_NAMESPACE``),
so a verifier can check an uploaded file (``certificates.verify``). The page text is
extractable and drawn in a fixed order (``FACT_ORDER``) that the verifier relies on to
compare the printed facts with the signed ones.

The certificate is drawn straight on the canvas (``draw_certificate``): the layout of
the earlier platypus version (tables of labels and values, rules, paddings) at offsets
computed top down, each value wrapped within its column (``wrap``), so a long name or a
long test centre takes more lines and pushes the rest down. A page taller than A4 (a
very long name, many sections) is drawn again wider by the factor it is too tall and
scaled down to fit, like platypus' shrinking ``KeepInFrame``. Platypus laid out nested
tables and wrapped each of some 50 paragraphs two or three times: about 20 ms of a
certificate's 37; drawing the page now takes some 3.5 ms.

``practice_report(facts)`` renders a practice result with platypus (rarely rendered): a
banner and a diagonal mark "PRACTICE — NOT A CERTIFICATE", no number, no QR code, no
token.

Fonts: ``certificates.fonts`` (DejaVu Sans and IPAexGothic, embedded TrueType subsets);
no standard-14 font is used anywhere, chart labels included.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

import segno
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfdoc import XMP, PDFInfo, PDFString
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepInFrame,
    LayoutError,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from certificates import fonts, links, signing
from certificates.facts import (
    CertificateFacts,
    PracticeFacts,
    ScoreLine,
    format_date,
    format_result,
    format_scale,
    format_score,
    format_value,
)

# re-exported: the app builds these and passes them here
__all__ = [
    "FACT_ORDER",
    "LABELS",
    "TOKEN_INFO_KEY",
    "CertificateFacts",
    "PracticeFacts",
    "ScoreLine",
    "practice_report",
    "render_certificate",
]

logger = logging.getLogger(__name__)

TOKEN_INFO_KEY = "CertificateToken"  # noqa: S105 - a PDF information entry, no secret
TOKEN_NAMESPACE = "urn:testing-center:certificate:1"  # noqa: S105 - XMP namespace of tc:token
QR_LEVEL = "M"  # 15 % recovery: survives a crease or a smudge on a printed page
PRACTICE_MARK = ("練習用 — 証明書ではありません", "PRACTICE — NOT A CERTIFICATE")

# Japanese label, English label. The verifier finds printed facts between these labels.
LABELS: dict[str, tuple[str, str]] = {
    "title": ("試験結果証明書", "Certificate of Test Result"),
    "practice_title": ("練習テスト結果", "Practice test result"),
    "number": ("証明書番号", "Certificate number"),
    "issued": ("発行日", "Issue date"),
    "name": ("氏名", "Full name (as on the ID)"),
    "practice_name": ("氏名", "Name"),
    "date_of_birth": ("生年月日", "Date of birth"),
    "nationality": ("国籍", "Nationality"),
    "exam_date": ("受験日", "Exam date"),
    "test_centre": ("試験会場", "Test centre"),
    "section": ("試験科目", "Section"),
    "score": ("得点", "Score"),
    "minimum": ("基準点", "Minimum"),
    "total": ("総合得点", "Total"),
    "scale": ("得点範囲", "Score range"),
    "pass_rule": ("合格基準", "Pass rule"),
    "result": ("判定", "Result"),
    "level": ("レベル", "Level"),
    "chart": ("得点グラフ", "Each section as a share of its maximum"),
    "verify": ("真正性の確認", "Check that this certificate is genuine"),
}
# Labels of the checked facts in drawing order (each value is printed right after its
# label and before the next label; the sections' scores come between "minimum" and
# "total"). ``level`` is printed only when the certificate has one.
FACT_ORDER = (
    "number",
    "issued",
    "name",
    "date_of_birth",
    "nationality",
    "exam_date",
    "test_centre",
    "section",
    "score",
    "minimum",
    "total",
    "scale",
    "pass_rule",
    "result",
    "level",
    "chart",
)

# layout
PAGE_MARGIN = 14 * mm
FRAME_PADDING = 6  # points: SimpleDocTemplate's frame keeps this inside the margins
CONTENT_WIDTH = A4[0] - 2 * PAGE_MARGIN - 2 * FRAME_PADDING
CONTENT_HEIGHT = A4[1] - 2 * PAGE_MARGIN - 2 * FRAME_PADDING
PHOTO_WIDTH, PHOTO_HEIGHT = 30 * mm, 40 * mm
PHOTO_MAX_PIXELS = (420, 560)  # about 350 dpi at 30 x 40 mm
PHOTO_AS_IS_PIXELS = (840, 1120)  # a JPEG up to twice that is embedded as it is
PHOTO_AS_IS_BYTES = 250_000
QR_SIZE = 50 * mm
QR_BORDER = 4  # modules of quiet zone around the code
LABEL_WIDTH = 44 * mm
GREY = colors.HexColor("#555555")
LIGHT = colors.HexColor("#999999")
BAND = colors.HexColor("#1f3b63")
PASS_COLOUR = colors.HexColor("#1b6e2d")
FAIL_COLOUR = colors.HexColor("#9b1c1c")
MARK_COLOUR = colors.Color(0.75, 0.1, 0.1, alpha=0.18)
GRID = colors.HexColor("#dddddd")
CHART_STEP = 25  # percent between the chart's grid lines


# ---- the certificate -----------------------------------------------------------------


def render_certificate(
    facts: CertificateFacts, token: str, base_url: str, link_signature: str
) -> bytes:
    """Return the one-page A4 certificate PDF of ``facts``, carrying ``token``.

    ``token`` is the signed token of the same facts (``claims.sign_certificate``), kept
    in the metadata; ``base_url`` the public address of the verification service (no
    trailing path); ``link_signature`` the number's link signature for the QR code
    (``links.sign_link``).

    The page is drawn straight on the canvas, top down (``draw_certificate``); a page
    taller than A4 (a very long name, many sections) is drawn again, scaled down to fit.
    """
    fonts.register_fonts()
    _warn_missing_glyphs(facts.full_name, facts.test_centre, facts.issuing_centre)
    link = links.verification_link(base_url, facts.number, link_signature)
    parts = CertificateParts(facts, token, link, qr_code(link), _photo_image(facts.photo))
    title = f"{LABELS['title'][1]} {facts.number}"
    scale = 1.0
    for _attempt in range(3):
        buffer = io.BytesIO()
        canvas = _new_canvas(buffer, title)
        _attach_token(canvas, token)
        canvas.translate(PAGE_MARGIN + FRAME_PADDING, A4[1] - PAGE_MARGIN - FRAME_PADDING)
        canvas.scale(scale, scale)
        height = -draw_certificate(canvas, parts, CONTENT_WIDTH / scale) * scale
        if height <= CONTENT_HEIGHT + 0.01:
            break
        # drawn wider by 1 / scale, the text wraps into fewer lines: the next one fits
        scale *= CONTENT_HEIGHT / height
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


@dataclass(frozen=True)
class CertificateParts:
    """What a certificate draws, prepared once even when the page is drawn twice."""

    facts: CertificateFacts
    token: str
    link: str
    code: segno.QRCode
    photo: Photo | None


@dataclass(frozen=True)
class Type:
    """A type style: size and leading in points, weight, colour."""

    size: float
    leading: float
    bold: bool = False
    colour: colors.Color = colors.black


# the styles of the platypus version (``Styles``), for the canvas
ISSUER = Type(10, 13, bold=True, colour=GREY)
TITLE = Type(21, 26, bold=True)
TITLE_EN = Type(12, 15, colour=GREY)
EXAM_JA = Type(14, 18, bold=True)
EXAM_EN = Type(11.5, 14)
LABEL_JA = Type(9, 11, bold=True)
LABEL_EN = Type(7.5, 11, colour=GREY)
SECTION_EN = Type(8.5, 11)
VALUE = Type(11, 14)
VALUE_BOLD = Type(11, 14, bold=True)
NUMBER = Type(13, 17, bold=True)
RESULT = Type(15, 19, bold=True)
SMALL = Type(8, 10.5, colour=GREY)
CELL_PADDING = 6  # points: ReportLab's default left and right cell padding
LABEL_HEIGHT = 2 * LABEL_JA.leading


def draw_certificate(canvas: Canvas, parts: CertificateParts, width: float) -> float:
    """Draw the certificate ``width`` points wide from y = 0 downwards; return the
    bottom's y (negative).

    The layout of the platypus version at fixed offsets, with the same paddings and
    rules; values wrap within their column. Text is drawn in ``FACT_ORDER`` (each value
    after its label), which the verifier reads the page text by.
    """
    facts = parts.facts
    y = draw_header(canvas, facts, 0, width)
    y = draw_candidate(canvas, facts, parts.photo, y - 4 * mm, width)
    y = draw_scores(canvas, facts.sections, y - 4 * mm, width)
    y = draw_outcome(canvas, facts, y - 2 * mm, width)
    return draw_verification(canvas, parts, y - 4 * mm, width)


def draw_header(canvas: Canvas, facts: CertificateFacts, top: float, width: float) -> float:
    """Issuing centre, title and exam title on the left; number and issue date on the
    right; a band beneath."""
    right_width = 72 * mm
    left_width = width - right_width
    japanese, english = LABELS["title"]
    y = top - CELL_PADDING / 2
    y = draw_text(canvas, facts.issuing_centre, ISSUER, 0, y, left_width)
    y = draw_text(canvas, japanese, TITLE, 0, y - 2 * mm, left_width)
    y = draw_text(canvas, english, TITLE_EN, 0, y, left_width)
    y -= 2 * mm
    if facts.exam_title_ja:
        y = draw_text(canvas, facts.exam_title_ja, EXAM_JA, 0, y, left_width)
    if facts.exam_title_en != facts.exam_title_ja:
        y = draw_text(canvas, facts.exam_title_en, EXAM_EN, 0, y, left_width)
    right = top - CELL_PADDING / 2
    right = draw_label(canvas, "number", width, right, align_right=True)
    right = draw_text(canvas, facts.number, NUMBER, width, right, right_width, align_right=True)
    right = draw_label(canvas, "issued", width, right - 2 * mm, align_right=True)
    issued = format_date(facts.issued_at.date())
    right = draw_text(canvas, issued, VALUE, width, right, right_width, align_right=True)
    bottom = min(y, right) - 3 * mm
    draw_rule(canvas, 0, bottom, width, 1.5, BAND)
    return bottom


def draw_candidate(
    canvas: Canvas, facts: CertificateFacts, photo: Photo | None, top: float, width: float
) -> float:
    """The candidate's details, the photo (or its empty frame) on the right."""
    inner = width - PHOTO_WIDTH - 6 * mm
    cell_top = top - CELL_PADDING / 2
    rows = [
        ("name", facts.full_name, VALUE_BOLD),
        ("date_of_birth", format_date(facts.date_of_birth), VALUE),
        ("nationality", facts.nationality, VALUE),
        ("exam_date", format_date(facts.exam_date), VALUE),
        ("test_centre", facts.test_centre, VALUE),
    ]
    y = draw_details(canvas, rows, cell_top, inner)
    if photo is None:
        frame_bottom = cell_top - PHOTO_HEIGHT
        canvas.setStrokeColor(LIGHT)
        canvas.setLineWidth(0.6)
        canvas.rect(width - PHOTO_WIDTH, frame_bottom, PHOTO_WIDTH, PHOTO_HEIGHT, fill=0)
    else:
        frame_bottom = cell_top - photo.height
        canvas.drawImage(photo.reader, width - photo.width, frame_bottom, photo.width, photo.height)
    return min(y, frame_bottom) - CELL_PADDING / 2


def draw_details(
    canvas: Canvas, rows: Sequence[tuple[str, str, Type]], top: float, width: float
) -> float:
    """Label-value rows ``width`` wide, each centred vertically, a hairline between."""
    value_width = width - LABEL_WIDTH - CELL_PADDING
    y = top
    for index, (key, value, style) in enumerate(rows):
        lines = wrap(value, style, value_width)
        value_height = len(lines) * style.leading
        height = max(LABEL_HEIGHT, value_height) + 2.2 + 2.8
        inside = y - 2.2
        draw_label(canvas, key, 0, inside - (height - 5 - LABEL_HEIGHT) / 2)
        draw_lines(canvas, lines, style, LABEL_WIDTH, inside - (height - 5 - value_height) / 2)
        y -= height
        if index < len(rows) - 1:
            draw_rule(canvas, 0, y, width, 0.3, LIGHT)
    return y


def draw_scores(canvas: Canvas, sections: Sequence[ScoreLine], top: float, width: float) -> float:
    """One row per scoring section: title, ``score / maximum``, minimum (or a dash)."""
    score_right = width - 30 * mm - CELL_PADDING
    minimum_right = width - CELL_PADDING
    title_width = width - 66 * mm - CELL_PADDING
    height = LABEL_HEIGHT + 4.5
    draw_label(canvas, "section", 0, top - 2)
    draw_label(canvas, "score", score_right, top - 2, align_right=True)
    draw_label(canvas, "minimum", minimum_right, top - 2, align_right=True)
    y = top - height
    draw_rule(canvas, 0, y, width, 0.8, BAND)
    for line in sections:
        titles = [(text, LABEL_JA) for text in wrap(line.title_ja or "", LABEL_JA, title_width)]
        titles += [(text, SECTION_EN) for text in wrap(line.title_en, SECTION_EN, title_width)]
        title_height = len(titles) * LABEL_JA.leading
        height = max(title_height, VALUE.leading) + 4.5
        inside = y - 2
        title_top = inside - (height - 4.5 - title_height) / 2
        for index, (text, style) in enumerate(titles):
            draw_line(canvas, text, style, 0, title_top - LABEL_JA.size - index * LABEL_JA.leading)
        baseline = inside - (height - 4.5 - VALUE.leading) / 2 - VALUE.size
        score = format_score(line.score, line.maximum)
        draw_line(canvas, score, VALUE_BOLD, score_right, baseline, align_right=True)
        minimum = format_value(line.minimum) if line.minimum is not None else "—"
        draw_line(canvas, minimum, VALUE, minimum_right, baseline, align_right=True)
        y -= height
        draw_rule(canvas, 0, y, width, 0.3, LIGHT)
    return y


def draw_outcome(canvas: Canvas, facts: CertificateFacts, top: float, width: float) -> float:
    """Total, range, pass rule, result and level; the chart on the right."""
    chart_width = 80 * mm
    cell_top = top - CELL_PADDING / 2
    rule = (facts.pass_rule_ja + "\n" if facts.pass_rule_ja else "") + facts.pass_rule_en
    verdict = Type(RESULT.size, RESULT.leading, bold=True, colour=_verdict_colour(facts.passed))
    rows = [
        ("total", format_score(facts.total, facts.scale_max), RESULT),
        ("scale", format_scale(facts.scale_min, facts.scale_max), VALUE),
        ("pass_rule", rule, VALUE),
        ("result", format_result(facts.passed), verdict),
    ]
    if facts.level:
        rows.append(("level", facts.level, RESULT))
    y = draw_details(canvas, rows, cell_top, width - chart_width - 4 * mm)
    if facts.sections:
        chart_top = draw_label(canvas, "chart", width - chart_width, cell_top) - 1 * mm
        chart_height = chart_size(facts.sections)
        draw_score_chart(
            canvas, width - chart_width, chart_top - chart_height, facts.sections, chart_width
        )
        y = min(y, chart_top - chart_height)
    return y - CELL_PADDING / 2


def draw_verification(canvas: Canvas, parts: CertificateParts, top: float, width: float) -> float:
    """How to check the certificate, the key id, and the QR code of the short link."""
    draw_rule(canvas, 0, top, width, 0.8, BAND)
    cell_top = top - 3 * mm
    text_width = width - QR_SIZE - 4 * mm
    page = parts.link.partition("?")[0]
    header, _payload, _input, _signature = signing.split_token(parts.token)
    y = draw_label(canvas, "verify", 0, cell_top) - 1.5 * mm
    y = draw_text(
        canvas,
        "QRコードを読み取るか、"
        f"{page} で証明書番号と生年月日を入力してください。"
        "この証明書は電子署名されています。",
        SMALL,
        0,
        y,
        text_width,
    )
    y = draw_text(
        canvas,
        "Scan the QR code, or enter the certificate number and the date of birth at "
        f"{page}. The certificate is digitally signed (Ed25519); the signed data is "
        "in this file's metadata, the QR code carries a signed link to the online "
        "record, and the public keys are published at the same address.",
        SMALL,
        0,
        y - 1 * mm,
        text_width,
    )
    y = draw_text(canvas, f"Key ID: {header.get('kid', '')}", SMALL, 0, y - 1 * mm, text_width)
    draw_qr(canvas, parts.code, width - QR_SIZE, cell_top - QR_SIZE, QR_SIZE)
    return min(y, cell_top - QR_SIZE) - CELL_PADDING / 2


def _verdict_colour(passed: bool) -> colors.Color:
    return PASS_COLOUR if passed else FAIL_COLOUR


def _new_canvas(buffer: io.BytesIO, title: str) -> Canvas:
    """An A4 canvas whose only fonts are the embedded ones (its default is Helvetica)."""
    canvas = Canvas(buffer, pagesize=A4, initialFontName=fonts.SANS, initialFontSize=10)
    canvas.setTitle(title)
    canvas.setSubject("")
    canvas.setAuthor("")
    canvas.setCreator("testing-center")
    return canvas


# ---- text on the canvas ------------------------------------------------------------

# a line may break at white space and around each CJK character (not before closing
# punctuation)
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_CLOSING = "、。，．）」』〕】"
_TOKENS = re.compile(rf"\s+|[{_CJK}][{_CLOSING}]*|[^\s{_CJK}]+")


@functools.lru_cache(maxsize=4096)
def _runs(text: str, bold: bool) -> tuple[tuple[str, str], ...]:
    """``fonts.runs`` of ``text``: the labels' runs are worked out once per process."""
    return tuple(fonts.runs(text, bold))


def text_width(text: str, style: Type) -> float:
    return sum(stringWidth(chunk, name, style.size) for name, chunk in _runs(text, style.bold))


def wrap(text: str, style: Type, width: float) -> list[str]:
    """``text`` broken into lines at most ``width`` points wide (a word longer than a
    line is broken between characters); a line break stays one."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, line_width = "", 0.0
        for token in _TOKENS.findall(paragraph):
            if token.isspace() and not line:
                continue
            token_width = text_width(token, style)
            if line and line_width + token_width > width and not token.isspace():
                lines.append(line.rstrip())
                line, line_width = "", 0.0
            if token_width > width:  # longer than a line: character by character
                for character in token:
                    character_width = text_width(character, style)
                    if line and line_width + character_width > width:
                        lines.append(line)
                        line, line_width = "", 0.0
                    line += character
                    line_width += character_width
                continue
            line += token
            line_width += token_width
        lines.append(line.rstrip())
    return lines


def draw_line(
    canvas: Canvas, text: str, style: Type, x: float, baseline: float, align_right: bool = False
) -> None:
    """One line of text, each run in its font, left-aligned at ``x`` or ending there."""
    if align_right:
        x -= text_width(text, style)
    line = canvas.beginText(x, baseline)
    line.setFillColor(style.colour)
    for name, chunk in _runs(text, style.bold):
        line.setFont(name, style.size, style.leading)
        line.textOut(chunk)
    canvas.drawText(line)


def draw_lines(
    canvas: Canvas,
    lines: Sequence[str],
    style: Type,
    x: float,
    top: float,
    align_right: bool = False,
) -> float:
    """``lines`` from ``top`` down (the first baseline a font size below); the bottom."""
    for index, text in enumerate(lines):
        draw_line(canvas, text, style, x, top - style.size - index * style.leading, align_right)
    return top - len(lines) * style.leading


def draw_text(
    canvas: Canvas,
    text: str,
    style: Type,
    x: float,
    top: float,
    width: float,
    align_right: bool = False,
) -> float:
    """``text`` wrapped to ``width`` from ``top`` down; the bottom."""
    return draw_lines(canvas, wrap(text, style, width), style, x, top, align_right)


def draw_label(canvas: Canvas, key: str, x: float, top: float, align_right: bool = False) -> float:
    """The Japanese label in bold, the English one beneath in small grey type; the bottom."""
    japanese, english = LABELS[key]
    draw_line(canvas, japanese, LABEL_JA, x, top - LABEL_JA.size, align_right)
    draw_line(canvas, english, LABEL_EN, x, top - LABEL_JA.size - LABEL_JA.leading, align_right)
    return top - LABEL_HEIGHT


def draw_rule(
    canvas: Canvas, x: float, y: float, width: float, weight: float, colour: colors.Color
) -> None:
    canvas.setStrokeColor(colour)
    canvas.setLineWidth(weight)
    canvas.line(x, y, x + width, y)


# ---- the practice report's blocks (platypus) -------------------------------------


class Styles:
    """Paragraph styles: Japanese labels above English ones, values in DejaVu Sans."""

    def __init__(self) -> None:
        base = ParagraphStyle("base", fontName=fonts.SANS, fontSize=10, leading=13)
        self.base = base
        self.issuer = ParagraphStyle("issuer", base, fontSize=10, textColor=GREY)
        self.title = ParagraphStyle("title", base, fontSize=21, leading=26, wordWrap="CJK")
        self.title_en = ParagraphStyle("title_en", base, fontSize=12, leading=15, textColor=GREY)
        self.exam_ja = ParagraphStyle("exam_ja", base, fontSize=14, leading=18, wordWrap="CJK")
        self.exam_en = ParagraphStyle("exam_en", base, fontSize=11.5, leading=14)
        self.label = ParagraphStyle("label", base, fontSize=9, leading=11)
        self.value = ParagraphStyle("value", base, fontSize=11, leading=14)
        self.value_ja = ParagraphStyle("value_ja", self.value, wordWrap="CJK")
        self.number = ParagraphStyle("number", base, fontSize=13, leading=17, alignment=TA_RIGHT)
        self.right = ParagraphStyle("right", self.label, alignment=TA_RIGHT)
        self.score = ParagraphStyle("score", self.value, alignment=TA_RIGHT)
        self.result = ParagraphStyle("result", base, fontSize=15, leading=19)
        self.small = ParagraphStyle("small", base, fontSize=8, leading=10.5, textColor=GREY)
        self.small_ja = ParagraphStyle("small_ja", self.small, wordWrap="CJK")
        self.mark = ParagraphStyle(
            "mark", base, fontSize=19, leading=25, alignment=TA_CENTER, textColor=FAIL_COLOUR
        )


def para(text: str, style: ParagraphStyle, bold: bool = False) -> Paragraph:
    return Paragraph(fonts.markup(text, bold), style)


def label(key: str, style: ParagraphStyle) -> Paragraph:
    """The Japanese label in bold, the English one beneath in small grey type."""
    japanese, english = LABELS[key]
    text = fonts.markup(japanese, bold=True)
    text += f'<br/><font size="7.5" color="#555555">{fonts.markup(english)}</font>'
    return Paragraph(text, style)


def table(rows: list[list], widths: Sequence[float], commands: Sequence[tuple], **options) -> Table:
    """A table whose own font is embedded too (ReportLab's default cell font is Helvetica)."""
    result = Table(rows, colWidths=list(widths), hAlign="LEFT", **options)
    result.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), fonts.SANS), *commands]))
    return result


def exam_titles(title_ja: str | None, title_en: str, styles: Styles) -> list[Flowable]:
    blocks: list[Flowable] = []
    if title_ja:
        blocks.append(para(title_ja, styles.exam_ja, bold=True))
    if title_en != title_ja:
        blocks.append(para(title_en, styles.exam_en))
    return blocks


def details(rows: list[tuple[str, Flowable]], styles: Styles, width: float) -> Table:
    return table(
        [[label(key, styles.label), value] for key, value in rows],
        [LABEL_WIDTH, width - LABEL_WIDTH],
        [
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEBELOW", (0, 0), (-1, -2), 0.3, LIGHT),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 2.2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.8),
        ],
    )


def section_title(line: ScoreLine, styles: Styles) -> Paragraph:
    text = fonts.markup(line.title_ja, bold=True) + "<br/>" if line.title_ja else ""
    text += f'<font size="8.5">{fonts.markup(line.title_en)}</font>'
    return Paragraph(text, styles.label)


def scores_block(sections: Sequence[ScoreLine], styles: Styles, width: float) -> Table:
    """One row per scoring section: title, ``score / maximum``, minimum (or a dash)."""
    score_width, minimum_width = 36 * mm, 30 * mm
    rows: list[list] = [
        [
            label("section", styles.label),
            label("score", styles.right),
            label("minimum", styles.right),
        ]
    ]
    for line in sections:
        minimum = format_value(line.minimum) if line.minimum is not None else "—"
        rows.append(
            [
                section_title(line, styles),
                para(format_score(line.score, line.maximum), styles.score, bold=True),
                para(minimum, styles.score),
            ]
        )
    return table(
        rows,
        [width - score_width - minimum_width, score_width, minimum_width],
        [
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, BAND),
            ("LINEBELOW", (0, 1), (-1, -1), 0.3, LIGHT),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ],
    )


def result_rows(
    total: float,
    scale: tuple[float, float],
    pass_rule: tuple[str | None, str],
    passed: bool,
    level: str | None,
    styles: Styles,
) -> list[tuple[str, Flowable]]:
    rule_ja, rule_en = pass_rule
    rule = (fonts.markup(rule_ja) + "<br/>" if rule_ja else "") + fonts.markup(rule_en)
    colour = "#1b6e2d" if passed else "#9b1c1c"
    verdict = f'<font color="{colour}">{fonts.markup(format_result(passed), bold=True)}</font>'
    rows: list[tuple[str, Flowable]] = [
        ("total", para(format_score(total, scale[1]), styles.result, bold=True)),
        ("scale", para(format_scale(*scale), styles.value)),
        ("pass_rule", Paragraph(rule, styles.value_ja)),
        ("result", Paragraph(verdict, styles.result)),
    ]
    if level:
        rows.append(("level", para(level, styles.result, bold=True)))
    return rows


def outcome_block(
    rows: list[tuple[str, Flowable]], sections: Sequence[ScoreLine], styles: Styles, width: float
) -> Table:
    """Total, range, pass rule, result and level; the chart on the right (drawn after)."""
    chart_width = 80 * mm
    chart: list[Flowable] = []
    if sections:
        chart = [
            label("chart", styles.label),
            Spacer(0, 1 * mm),
            ChartFlowable(sections, chart_width),
        ]
    return table(
        [[details(rows, styles, width - chart_width - 4 * mm), chart]],
        [width - chart_width, chart_width],
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ],
    )


# ---- photo, chart and QR code (drawn on the canvas; the practice report's flowables
# ---- draw the chart the same way) -----------------------------------------------------


@dataclass(frozen=True)
class Photo:
    """A JPEG photo to draw at ``width`` x ``height`` points."""

    reader: JpegReader
    width: float
    height: float


def _photo_image(photo: bytes | None) -> Photo | None:
    """The photo fitted in a 30 x 40 mm frame, or None (an empty frame, no text in it)."""
    if not photo:
        return None
    try:
        with PILImage.open(io.BytesIO(photo)) as picture:
            ratio = picture.height / picture.width
            data = photo if _embeddable_as_is(picture, len(photo)) else _reduced_jpeg(picture)
    except (OSError, PILImage.DecompressionBombError):
        logger.warning("certificate photo cannot be read; the frame stays empty")
        return None
    width, height = PHOTO_WIDTH, PHOTO_WIDTH * ratio
    if height > PHOTO_HEIGHT:
        width, height = PHOTO_HEIGHT / ratio, PHOTO_HEIGHT
    return Photo(JpegReader(data), width, height)


class JpegReader(ImageReader):
    """JPEG data for ``canvas.drawImage``, which puts it into the PDF as it is (DCTDecode).

    ``drawImage`` names each image by a digest of ``getRGBData()``, and ReportLab's
    reader decodes the whole photo for that (1.4 MB of pixels hashed per render, some
    3 ms, for a name); here the name comes from the JPEG bytes, which identify the
    image just as well. Nothing else reads ``getRGBData`` of a JPEG.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self._jpeg = data

    def getRGBData(self) -> bytes:
        self._dataA = None  # no alpha channel: drawImage reads it after this call
        return self._jpeg


def _embeddable_as_is(picture: PILImage.Image, size: int) -> bool:
    """Whether the JPEG goes into the PDF byte for byte (PDFs hold JPEG data as it is).

    Check-in photos are stored as metadata-free RGB JPEGs of at most 1,200 px a side;
    one up to twice the print size (``PHOTO_AS_IS_PIXELS``, some 700 dpi) and
    ``PHOTO_AS_IS_BYTES`` is embedded without decoding, resizing and encoding it again
    on every render (a third of a render's time for a 600 x 800 photo). Anything
    carrying more than a JFIF header (EXIF with a location, comments) is re-encoded.
    """
    return (
        picture.format == "JPEG"
        and picture.mode in ("RGB", "L")
        and picture.width <= PHOTO_AS_IS_PIXELS[0]
        and picture.height <= PHOTO_AS_IS_PIXELS[1]
        and size <= PHOTO_AS_IS_BYTES
        and all(marker == "APP0" for marker, _content in picture.applist)
    )


def _reduced_jpeg(picture: PILImage.Image) -> bytes:
    """The photo within ``PHOTO_MAX_PIXELS``, as a JPEG without metadata."""
    picture.thumbnail(PHOTO_MAX_PIXELS)
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def chart_size(sections: Sequence[ScoreLine]) -> float:
    """The chart's height: a 6 mm band per section and 9 mm for the axis."""
    return len(sections) * 6 * mm + 9 * mm


def draw_score_chart(
    canvas: Canvas, x: float, y: float, sections: Sequence[ScoreLine], width: float
) -> None:
    """A horizontal bar per section, first on top, its lower left corner at ``x, y``: its
    score as a percentage of its maximum, with a 0-100 % axis gridded by 25.

    Drawn with canvas calls (the bar chart widget, whose axes are laid out through many
    validated attributes, took some 5 ms per certificate for this fixed design).
    """
    bar_height, label_width, font_size = 6 * mm, 36 * mm, 6.5
    plot_x, plot_y = x + label_width, y + 7 * mm
    plot_width, plot_height = width - label_width - 4 * mm, len(sections) * bar_height
    canvas.saveState()
    canvas.setFont(fonts.SANS, font_size)
    canvas.setFillColor(colors.black)
    for percent in range(0, 101, CHART_STEP):
        tick = plot_x + plot_width * percent / 100
        if percent:
            canvas.setStrokeColor(GRID)
            canvas.setLineWidth(0.25)
            canvas.line(tick, plot_y, tick, plot_y + plot_height)
        canvas.setStrokeColor(LIGHT)
        canvas.setLineWidth(1)
        canvas.line(tick, plot_y, tick, plot_y - 5)
        canvas.drawCentredString(tick, plot_y - 5 - 0.8 * font_size, f"{percent}%")
    for index, line in enumerate(sections):
        band = plot_y + plot_height - (index + 1) * bar_height
        canvas.setFillColor(BAND)
        share = plot_width * _share(line) / 100
        canvas.rect(plot_x, band + 0.2 * bar_height, share, 0.6 * bar_height, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        baseline = band + bar_height / 2 - 0.35 * font_size
        canvas.drawRightString(plot_x - 2, baseline, _chart_label(line))
    canvas.setStrokeColor(LIGHT)
    canvas.setLineWidth(1)
    canvas.line(plot_x, plot_y, plot_x + plot_width, plot_y)
    canvas.line(plot_x, plot_y, plot_x, plot_y + plot_height)
    canvas.restoreState()


class ChartFlowable(Flowable):
    """``draw_score_chart`` as a flowable (the practice report)."""

    def __init__(self, sections: Sequence[ScoreLine], width: float) -> None:
        super().__init__()
        self.sections = sections
        self.width, self.height = width, chart_size(sections)

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        draw_score_chart(self.canv, 0, 0, self.sections, self.width)


def _share(line: ScoreLine) -> float:
    return 100 * line.score / line.maximum if line.maximum else 0.0


def _chart_label(line: ScoreLine) -> str:
    """The English title (the chart's labels take one font: DejaVu Sans, no kana)."""
    title = line.title_en
    return title if len(title) <= 28 else title[:27] + "…"


def qr_code(value: str) -> segno.QRCode:
    """The QR code of ``value`` (segno, at least level ``QR_LEVEL``; the mask chosen by
    the standard's penalty rules)."""
    return segno.make_qr(value, error=QR_LEVEL)


def draw_qr(canvas: Canvas, code: segno.QRCode, x: float, y: float, size: float) -> None:
    """``code`` with its quiet zone of 4 modules, ``size`` points square, its lower left
    corner at ``x, y``: one filled path of a rectangle per run of dark modules (one fill
    operator instead of one per module, and no seams between touching modules)."""
    matrix = code.matrix
    module = size / (len(matrix) + 2 * QR_BORDER)
    path = canvas.beginPath()
    for row, modules in enumerate(matrix):
        top = y + size - (row + QR_BORDER + 1) * module
        for start, end in dark_runs(modules):
            path.rect(x + (start + QR_BORDER) * module, top, (end - start) * module, module)
    canvas.setFillColor(colors.black)
    canvas.drawPath(path, stroke=0, fill=1)


class QrFlowable(Flowable):
    """``draw_qr`` of ``value`` as a flowable."""

    def __init__(self, value: str, size: float = QR_SIZE) -> None:
        super().__init__()
        self.code = qr_code(value)
        self.width = self.height = size

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        draw_qr(self.canv, self.code, 0, 0, self.width)


def dark_runs(modules: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of dark (non-zero) modules in a row."""
    runs = []
    start = None
    for index, dark in enumerate(modules):
        if dark and start is None:
            start = index
        elif not dark and start is not None:
            runs.append((start, index))
            start = None
    if start is not None:
        runs.append((start, len(modules)))
    return runs


# ---- metadata ------------------------------------------------------------------------


class CertificateInfo(PDFInfo):
    """The document information dictionary with the ``/CertificateToken`` entry added."""

    token = ""

    def format(self, document) -> bytes:  # mirrors PDFInfo.format, plus the token
        from reportlab.pdfbase.pdfdoc import PDFDate, PDFDictionary, PDFName

        entries = {
            "Title": PDFString(self.title),
            "Author": PDFString(self.author),
            "Subject": PDFString(self.subject),
            "Keywords": PDFString(self.keywords),
            "Creator": PDFString(self.creator),
            "Producer": PDFString(self.producer),
            "Trapped": PDFName(self.trapped),
            TOKEN_INFO_KEY: PDFString(self.token),
        }
        entries["CreationDate"] = entries["ModDate"] = PDFDate(
            ts=document._timeStamp, dateFormatter=self._dateFormatter
        )
        return PDFDictionary(entries).format(document)


def xmp_packet(token: str, title: str) -> str:
    """An XMP packet with the title and ``tc:token`` (the token is base64url: no escaping
    needed, escaped all the same)."""
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:tc="{TOKEN_NAMESPACE}">\n'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li>'
        "</rdf:Alt></dc:title>\n"
        f"<tc:token>{escape(token)}</tc:token>\n"
        "</rdf:Description>\n</rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="r"?>'
    )


def _attach_token(canvas: Canvas, token: str) -> None:
    """Put ``token`` in the document information and in the XMP metadata."""
    # ReportLab has no public setter for the information dictionary, and registers its
    # object when the document is created: the object stays, its class gains the token.
    info = canvas._doc.info
    info.__class__ = CertificateInfo
    info.token = token
    packet = xmp_packet(token, info.title).encode("utf-8")
    canvas.setCatalogEntry("Metadata", XMP(creator=lambda _document: packet))


# ---- the practice report -------------------------------------------------------------


def practice_report(facts: PracticeFacts) -> bytes:
    """Return a one-page practice report: marked as no certificate, with nothing to verify."""
    fonts.register_fonts()
    styles = Styles()
    width = CONTENT_WIDTH
    japanese, english = LABELS["practice_title"]
    mark_ja, mark_en = PRACTICE_MARK

    def story() -> list[Flowable]:
        banner = table(
            [[[para(mark_en, styles.mark, bold=True), para(mark_ja, styles.mark, bold=True)]]],
            [width],
            [
                ("BOX", (0, 0), (-1, -1), 2, FAIL_COLOUR),
                ("TOPPADDING", (0, 0), (-1, -1), 3 * mm),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3 * mm),
            ],
        )
        candidate = details(
            [
                ("practice_name", para(facts.full_name, styles.value, bold=True)),
                ("exam_date", para(format_date(facts.taken_on), styles.value)),
            ],
            styles,
            width,
        )
        rows = result_rows(
            facts.total,
            (facts.scale_min, facts.scale_max),
            (facts.pass_rule_ja, facts.pass_rule_en),
            facts.passed,
            facts.level,
            styles,
        )
        return [
            banner,
            Spacer(0, 4 * mm),
            para(japanese, styles.title, bold=True),
            para(english, styles.title_en),
            Spacer(0, 2 * mm),
            *exam_titles(facts.exam_title_ja, facts.exam_title_en, styles),
            Spacer(0, 4 * mm),
            candidate,
            Spacer(0, 4 * mm),
            scores_block(facts.sections, styles, width),
            Spacer(0, 2 * mm),
            outcome_block(rows, facts.sections, styles, width),
            Spacer(0, 6 * mm),
            para(
                "This is the result of a practice test taken without supervision. It is not a "
                "certificate, has no certificate number and cannot be verified: only a "
                "proctored exam at a test centre gives a certificate.",
                styles.small,
            ),
            para(
                "これは監督なしで受けた練習テストの結果です。証明書ではなく、証明書番号もなく、"
                "真正性の確認もできません。証明書は試験会場で監督付きで受けた試験にのみ発行されます。",
                styles.small_ja,
            ),
        ]

    return _build(
        story, title=f"{english} — {mark_en}", on_page=_draw_practice_mark, subject=mark_en
    )


def _draw_practice_mark(canvas: Canvas) -> None:
    """The practice mark across the page, behind nothing, in translucent red."""
    canvas.saveState()
    canvas.setFillColor(MARK_COLOUR)
    canvas.translate(A4[0] / 2, A4[1] / 2)
    canvas.rotate(52)
    canvas.setFont(fonts.SANS_BOLD, 40)
    canvas.drawCentredString(0, 14, PRACTICE_MARK[1])
    canvas.setFont(fonts.JAPANESE, 34)
    canvas.drawCentredString(0, -34, PRACTICE_MARK[0])
    canvas.restoreState()


# ---- building ------------------------------------------------------------------------


def _build(
    make_story: Callable[[], list[Flowable]],
    title: str,
    on_page: Callable[[Canvas], None],
    subject: str = "",
) -> bytes:
    """Lay the story out on one A4 page.

    The story goes into the page's frame as it is; only one longer than the page (a
    very long name, many sections) is made again and laid out inside a ``KeepInFrame``
    that shrinks it to fit. Wrapping every story in that ``KeepInFrame`` laid each
    table out twice: some 4 ms, a tenth of a certificate's rendering.
    """
    try:
        pdf, pages = _layout(make_story(), title, on_page, subject)
    except LayoutError:  # a block taller than the page: only shrinking fits it
        pages = 0
    if pages == 1:
        return pdf
    shrunk = KeepInFrame(CONTENT_WIDTH, CONTENT_HEIGHT, make_story(), mode="shrink")
    return _layout([shrunk], title, on_page, subject)[0]


def _layout(
    story: list[Flowable], title: str, on_page: Callable[[Canvas], None], subject: str
) -> tuple[bytes, int]:
    """The PDF of ``story`` and its number of pages."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=PAGE_MARGIN,
        rightMargin=PAGE_MARGIN,
        topMargin=PAGE_MARGIN,
        bottomMargin=PAGE_MARGIN,
        title=title,
        subject=subject,
        author="",
        creator="testing-center",
        initialFontName=fonts.SANS,
    )

    def page(canvas: Canvas, _document: SimpleDocTemplate) -> None:
        on_page(canvas)

    document.build(story, onFirstPage=page, onLaterPages=page)
    return buffer.getvalue(), document.page


def _warn_missing_glyphs(*texts: str) -> None:
    missing = fonts.missing_characters(" ".join(texts))
    if missing:  # the count only: names are personal data
        logger.warning("certificate: %d characters without a glyph", len(missing))
