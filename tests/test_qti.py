"""QTI 3.0 import/export of item documents (item_bank.qti): round trip, structure,
QTI 2.x import and the refusal of malformed or unsafe packages."""

from __future__ import annotations

import copy
import io
import os
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import etree

from item_bank import qti
from item_bank.errors import InvalidItem
from item_bank.html import sanitize_html
from item_bank.qti import Bundle, read_qti, write_qti_package

QTI3 = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
QTI21 = "http://www.imsglobal.org/xsd/imsqti_v2p1"
QTI22 = "http://www.imsglobal.org/xsd/imsqti_v2p2"
CP11 = "http://www.imsglobal.org/xsd/imscp_v1p1"


def media_bytes(seed: int, size: int = 600) -> bytes:
    return bytes((seed * 31 + i * 7) % 256 for i in range(size))


MEDIA = {
    "media/pic a.png": media_bytes(1),
    "media/opt-b.png": media_bytes(2),
    "media/l-001.wav": media_bytes(3),
    "media/n5-conv-01.wav": media_bytes(4),
    "media/conv 02.wav": media_bytes(5),
    "media/spare.png": media_bytes(6),
    "media/駅 1.png": media_bytes(7),
}

EXPLANATION = {
    "ja": "「起きます」は「おきます」と読みます。",
    "en": "Read it as 'okimasu' – Tom & Jerry <always> wake up early.\n",
    "uz": "«Okimasu» deb o'qiladi.",
    "ru": "Читается «окимасу».",
}

STIMULI = [
    {
        "ref": "n5-rc-passage-01",
        "kind": "passage",
        "html": "<p><ruby>駅<rt>えき</rt></ruby>の前に<b>パン屋</b>があります。</p>"
        "<p>A &amp; B&nbsp;C &lt;x&gt;</p>",
        "audio": "media/n5-conv-01.wav",
        "play_limit": 2,
        "language": "ja",
    },
    {"ref": "n5-l-conv-02", "kind": "conversation", "audio": "media/conv 02.wav"},
]

CLASSIFIED = {"exam_family": "jlpt", "level": "N5", "section": "vocabulary", "topic": "daily"}

ITEMS = [
    {
        "ref": "n5-vocab-001",
        "type": "single_choice",
        "exam_family": "jlpt",
        "level": "N5",
        "section": "vocabulary",
        "topic": "daily_life",
        "language": "ja",
        "can_do": "Can read the kana of basic daily words",
        "tags": ["kanji_reading", "picture"],
        "author": "A. Author",
        "source": "original",
        "licence": "CC0-1.0",
        "difficulty": {
            "p": 0.62,
            "irt": {"model": "2pl", "a": 1.1, "b": -0.3, "c": 0.0, "scale": "theta"},
        },
        "stimulus": "n5-rc-passage-01",
        "group": "n5-rc-set-01",
        "enemies": ["n5-vocab-014", "n5-vocab-015"],
        "stem": '<p><ruby>毎朝<rt>まいあさ</rt></ruby>、<img src="media/pic a.png" alt="朝">を'
        '<u>食べます</u>。</p><p lang="en">Tom &amp; Jerry&nbsp;<br>"quoted"</p>',
        "options": [
            {"id": "A", "html": "<ruby>駅<rt>えき</rt></ruby>"},
            {"id": "B", "html": '<img src="media/opt-b.png" alt="B" width="120" height="80">'},
            {"id": "C", "html": "<b>パン</b>"},
            {"id": "D", "html": "ごはん"},
        ],
        "key": "B",
        "explanation": EXPLANATION,
    },
    {
        "ref": "n5-l-002",
        **CLASSIFIED,
        "type": "multiple_response",
        "audio": "media/l-001.wav",
        "play_limit": 2,
        "stem": "<p>正しいものを全部選んでください。</p>",
        "options": [{"id": x, "html": f"<p>{x}です</p>"} for x in "ABCDE"],
        "key": ["A", "C"],
        "scoring": {"partial_credit": True},
    },
    {
        "ref": "n5-mr-003",
        **CLASSIFIED,
        "type": "multiple_response",
        "stem": "<p>どれですか。</p>",
        "options": [{"id": x, "html": x} for x in "ABCD"],
        "key": ["D", "B"],
        "scoring": {"partial_credit": False},
    },
    {
        "ref": "n5-grammar-004",
        **CLASSIFIED,
        "type": "ordering",
        "stem": "<p>あそこで ＿＿ ＿＿ ★ ＿＿ 人は 田中さんです。</p>",
        "options": [
            {"id": "A", "html": "本を"},
            {"id": "B", "html": "いる"},
            {"id": "C", "html": "読んで"},
            {"id": "D", "html": "<ruby>静<rt>しず</rt></ruby>かに"},
        ],
        "key": ["D", "A", "C", "B"],
        "scoring": {"star_position": 3},
    },
    {
        "ref": "n5-te-005",
        **CLASSIFIED,
        "type": "text_entry",
        "stem": "<p>わたしは毎朝（　　）を食べます。</p><p>何を入れますか。</p>",
        "max_length": 20,
        "key": {
            "answers": [
                {"value": "パン", "credit": 1.0},
                {"value": "ぱん", "credit": 1.0},
                {"value": "ごはん", "credit": 0.5},
            ],
            "normalize": {"kana": True},
        },
    },
    {
        "ref": "n5-te-006",
        **CLASSIFIED,
        "type": "text_entry",
        "stem": "<p>「たべます」をひらがなで書いてください。</p>",
        "key": {"answers": [{"value": "たべます", "credit": 1.0}], "normalize": {"kana": False}},
    },
    {
        "ref": "n5-match-007",
        **CLASSIFIED,
        "type": "matching",
        "stimulus": "n5-l-conv-02",
        "stem": "<p>会話を聞いて、合うものを選んでください。</p>",
        "prompts": [{"id": str(n), "html": f"<p>{n}ばん</p>"} for n in (1, 2, 3)],
        "choices": [{"id": c, "html": f"<p>{c.upper()}</p>"} for c in "abc"]
        + [{"id": "d", "html": '<img src="media/駅 1.png" alt="駅">'}],
        "key": {"1": "b", "2": "a", "3": "d"},
        "scoring": {"partial_credit": True},
    },
    {
        "ref": "n5-match-008",
        **CLASSIFIED,
        "type": "matching",
        "stem": "<p>Match.</p>",
        "prompts": [{"id": "a", "html": "犬"}, {"id": "b", "html": "猫"}],
        "choices": [
            {"id": "a", "html": "dog"},
            {"id": "b", "html": "cat"},
            {"id": "c", "html": "x"},
        ],
        "key": {"a": "a", "b": "b"},
    },
    {
        "ref": "ssw-tf-009",
        "type": "true_false",
        "exam_family": "ssw_accommodation",
        "level": "1",
        "section": "safety",
        "topic": "fire",
        "language": "en",
        "stem": "<p>Fire exits may be locked at night.</p>",
        "key": False,
    },
]


def make_bundle() -> Bundle:
    return Bundle(items=copy.deepcopy(ITEMS), stimuli=copy.deepcopy(STIMULI), media=dict(MEDIA))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    out = tmp_path / "export.zip"
    write_qti_package(make_bundle(), out)
    return out


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def manifest(resources: dict[str, str], version: str = "v3p0", namespace: str = CP11) -> bytes:
    """A minimal IMS CP manifest: {href: identifier} of item resources."""
    rows = "".join(
        f'<resource identifier="{rid}" type="imsqti_item_xml{version}" href="{href}">'
        f'<file href="{href}"/></resource>'
        for href, rid in resources.items()
    )
    head = f'<manifest xmlns="{namespace}" identifier="M">'
    return f"{head}<resources>{rows}</resources></manifest>".encode()


def qti3_item(identifier: str, interaction: str | None = None, body: str = "<p>Stem</p>") -> bytes:
    declaration = (
        '<qti-response-declaration identifier="RESPONSE" cardinality="single" '
        'base-type="identifier"><qti-correct-response><qti-value>A</qti-value>'
        "</qti-correct-response></qti-response-declaration>"
    )
    interaction = interaction or (
        '<qti-choice-interaction response-identifier="RESPONSE" max-choices="1">'
        '<qti-simple-choice identifier="A">a</qti-simple-choice>'
        '<qti-simple-choice identifier="B">b</qti-simple-choice>'
        '<qti-simple-choice identifier="C">c</qti-simple-choice></qti-choice-interaction>'
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<qti-assessment-item xmlns="{QTI3}" '
        f'identifier="{identifier}" title="{identifier}">{declaration}'
        f"<qti-item-body>{body}{interaction}</qti-item-body></qti-assessment-item>"
    ).encode()


def package_of(tmp_path: Path, items: dict[str, bytes], extra: dict[str, bytes] | None = None):
    """Write a zip package whose manifest lists ``items`` ({path: xml})."""
    resources = {path: f"R-{n}" for n, path in enumerate(items)}
    entries = {"imsmanifest.xml": manifest(resources), **items, **(extra or {})}
    out = tmp_path / "in.zip"
    out.write_bytes(zip_bytes(entries))
    return out


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InvalidItem) as caught:
        read_qti(path)
    return caught.value.problems


def parse(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


# --------------------------------------------------------------------------- round trip


def test_fixture_html_is_in_sanitised_form() -> None:
    """Round trips are exact for sanitised HTML, so the fixtures must already be sanitised."""
    for item in ITEMS:
        htmls = [item["stem"]] + [
            c["html"] for k in ("options", "prompts", "choices") for c in item.get(k, [])
        ]
        assert all(sanitize_html(html) == html for html in htmls), item["ref"]
    assert sanitize_html(STIMULI[0]["html"]) == STIMULI[0]["html"]


def test_round_trip_restores_every_document_and_media_exactly(package: Path) -> None:
    """Export then import gives back every item, stimulus and media file field by field."""
    restored = read_qti(package)
    assert [item["ref"] for item in restored.items] == [item["ref"] for item in ITEMS]
    for original, back in zip(ITEMS, restored.items, strict=True):
        for name, value in original.items():
            assert back.get(name) == value, (original["ref"], name)
        assert back == original, original["ref"]
    assert restored.stimuli == STIMULI
    assert restored.media == MEDIA
    assert restored.items[-1]["key"] is False
    assert restored.origin == str(package)


def test_round_trip_is_stable(tmp_path: Path, package: Path) -> None:
    """Exporting an imported bundle again yields byte-identical package files."""
    again = tmp_path / "again.zip"
    write_qti_package(read_qti(package), again)
    with zipfile.ZipFile(package) as first, zipfile.ZipFile(again) as second:
        assert first.namelist() == second.namelist()
        assert all(first.read(name) == second.read(name) for name in first.namelist())


def test_exported_package_is_structurally_valid_qti3(package: Path) -> None:
    """Every item parses with a QTI 3 root, and the manifest lists every file it ships."""
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        root = parse(archive.read("imsmanifest.xml"))
        resources = root.iter("{*}resource")
        listed = {"imsmanifest.xml"}
        types = {}
        for resource in resources:
            hrefs = {unquote(f.get("href")) for f in resource.iter("{*}file")}
            listed |= hrefs
            types[resource.get("href")] = resource.get("type")
            assert unquote(resource.get("href")) in hrefs
        assert listed == names
        items = [name for name in names if name.startswith("items/")]
        assert len(items) == len(ITEMS)
        for name in items:
            item = parse(archive.read(name))
            assert item.tag == f"{{{QTI3}}}qti-assessment-item"
            assert types[name] == "imsqti_item_xmlv3p0"
            body = item.find(f"{{{QTI3}}}qti-item-body")
            assert body is not None
            assert item.find(f"{{{QTI3}}}qti-response-processing").get("template")
        for name in (n for n in names if n.startswith("stimuli/")):
            assert parse(archive.read(name)).tag == f"{{{QTI3}}}qti-assessment-stimulus"
            assert types[name] == "imsqti_stimulus_xmlv3p0"


def test_export_uses_the_documented_qti3_mapping(package: Path) -> None:
    """Interactions, data-* attributes, tutor rubric blocks and metadata are where documented."""
    with zipfile.ZipFile(package) as archive:
        item = parse(archive.read("items/n5-te-005.xml"))
        entry = item.find(f".//{{{QTI3}}}qti-text-entry-interaction")
        assert entry.getparent().tag == f"{{{QTI3}}}p"
        assert entry.get("data-blank") == "（　　）"
        assert entry.get("data-kana-equivalent") == "true"
        assert entry.get("expected-length") == "20"
        maps = item.findall(f".//{{{QTI3}}}qti-map-entry")
        assert (maps[0].get("map-key"), maps[0].get("case-sensitive")) == ("パン", "false")
        first = parse(archive.read("items/n5-vocab-001.xml"))
        blocks = first.findall(f".//{{{QTI3}}}qti-rubric-block")
        assert [b.get("view") for b in blocks] == ["tutor"] * 4
        assert first.find(f"{{{QTI3}}}qti-assessment-stimulus-ref").get("href") == (
            "../stimuli/n5-rc-passage-01.xml"
        )
        audio = parse(archive.read("items/n5-l-002.xml")).find(f".//{{{QTI3}}}audio")
        assert (audio.get("src"), audio.get("data-play-limit")) == ("../media/l-001.wav", "2")
        order = parse(archive.read("items/n5-grammar-004.xml"))
        assert order.find(f".//{{{QTI3}}}qti-order-interaction").get("data-star-position") == "3"
        tf = parse(archive.read("items/ssw-tf-009.xml"))
        assert "tc-true-false" in tf.find(f".//{{{QTI3}}}qti-choice-interaction").get("class")
        meta = parse(archive.read("imsmanifest.xml")).find(".//{urn:testing-center:item:1}item")
        assert '"exam_family": "jlpt"' in meta.text


def test_read_unpacked_folder(tmp_path: Path, package: Path) -> None:
    """An unpacked package folder reads exactly like the zip."""
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    from_folder, from_zip = read_qti(folder), read_qti(package)
    assert from_folder.items == from_zip.items == ITEMS
    assert (from_folder.stimuli, from_folder.media) == (from_zip.stimuli, from_zip.media)
    assert from_folder.origin == str(folder)


def test_read_single_item_file(tmp_path: Path, package: Path) -> None:
    """A lone item file yields its content and key; classification is left empty."""
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(folder)
    bundle = read_qti(folder / "items" / "ssw-tf-009.xml")
    (item,) = bundle.items
    original = ITEMS[-1]
    assert {k: item[k] for k in ("ref", "type", "stem", "key", "language")} == {
        k: original[k] for k in ("ref", "type", "stem", "key", "language")
    }
    assert all(item[field] == "" for field in ("exam_family", "level", "section", "topic"))


# --------------------------------------------------------------------------- QTI 2.x import

QTI21_CHOICE = f"""<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="{QTI21}" identifier="choice-21" title="Sky" adaptive="false"
    timeDependent="false" xml:lang="en">
  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">
    <correctResponse>
      <value>ChoiceB</value>
    </correctResponse>
  </responseDeclaration>
  <outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float"/>
  <itemBody>
    <p>Look at the picture.</p>
    <p><img src="images/sky.png" alt="sky"/></p>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="1">
      <prompt>What colour is the <em>sky</em>?</prompt>
      <simpleChoice identifier="ChoiceA">Red</simpleChoice>
      <simpleChoice identifier="ChoiceB">Blue</simpleChoice>
      <simpleChoice identifier="ChoiceC">Green</simpleChoice>
    </choiceInteraction>
    <rubricBlock view="tutor"><p>The sky is blue.</p></rubricBlock>
  </itemBody>
  <responseProcessing
      template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"/>
</assessmentItem>
""".encode()

QTI22_ORDER = f"""<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="{QTI22}" identifier="order-22" title="Words" adaptive="false"
    timeDependent="false">
  <responseDeclaration identifier="RESPONSE" cardinality="ordered" baseType="identifier">
    <correctResponse><value>F3</value><value>F1</value><value>F2</value></correctResponse>
  </responseDeclaration>
  <itemBody>
    <orderInteraction responseIdentifier="RESPONSE" shuffle="true">
      <prompt>Put the words in order.</prompt>
      <simpleChoice identifier="F1">パンを</simpleChoice>
      <simpleChoice identifier="F2">食べます</simpleChoice>
      <simpleChoice identifier="F3">毎朝</simpleChoice>
    </orderInteraction>
  </itemBody>
  <responseProcessing
      template="http://www.imsglobal.org/question/qti_v2p2/rptemplates/match_correct"/>
</assessmentItem>
""".encode()

QTI22_MATCH_AND_TEXT = f"""<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="{QTI22}" identifier="match-22" title="Pairs" adaptive="false"
    timeDependent="false" xml:lang="ja">
  <responseDeclaration identifier="RESPONSE" cardinality="multiple" baseType="directedPair">
    <correctResponse><value>P1 C2</value><value>P2 C1</value></correctResponse>
    <mapping lowerBound="0" defaultValue="0">
      <mapEntry mapKey="P1 C2" mappedValue="0.5"/><mapEntry mapKey="P2 C1" mappedValue="0.5"/>
    </mapping>
  </responseDeclaration>
  <itemBody>
    <matchInteraction responseIdentifier="RESPONSE" shuffle="true" maxAssociations="2">
      <prompt>合うものを選んでください。</prompt>
      <simpleMatchSet>
        <simpleAssociableChoice identifier="P1" matchMax="1">いぬ</simpleAssociableChoice>
        <simpleAssociableChoice identifier="P2" matchMax="1">ねこ</simpleAssociableChoice>
      </simpleMatchSet>
      <simpleMatchSet>
        <simpleAssociableChoice identifier="C1" matchMax="1">cat</simpleAssociableChoice>
        <simpleAssociableChoice identifier="C2" matchMax="1">dog</simpleAssociableChoice>
      </simpleMatchSet>
    </matchInteraction>
  </itemBody>
  <responseProcessing
      template="http://www.imsglobal.org/question/qti_v2p2/rptemplates/map_response"/>
</assessmentItem>
""".encode()

FOREIGN = {"exam_family": "", "level": "", "section": "", "topic": ""}


def test_qti21_choice_item_imports_as_single_choice(tmp_path: Path) -> None:
    """A QTI 2.1 choiceInteraction becomes single_choice; prompt, image and tutor text kept."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "sky.png").write_bytes(b"png-bytes")
    (tmp_path / "choice.xml").write_bytes(QTI21_CHOICE)
    bundle = read_qti(tmp_path / "choice.xml")
    assert bundle.items == [
        {
            "ref": "choice-21",
            "type": "single_choice",
            **FOREIGN,
            "language": "en",
            "stem": '<p>Look at the picture.</p><p><img src="images/sky.png" alt="sky"></p>'
            "<p>What colour is the <em>sky</em>?</p>",
            "options": [
                {"id": "ChoiceA", "html": "Red"},
                {"id": "ChoiceB", "html": "Blue"},
                {"id": "ChoiceC", "html": "Green"},
            ],
            "key": "ChoiceB",
            "explanation": {"en": "The sky is blue."},
        }
    ]
    assert bundle.media == {"images/sky.png": b"png-bytes"}


def test_qti22_package_imports_order_and_match_items(tmp_path: Path) -> None:
    """A QTI 2.2 package: orderInteraction -> ordering, matchInteraction -> matching."""
    path = tmp_path / "qti22.zip"
    entries = {
        "imsmanifest.xml": manifest(
            {"q/order-22.xml": "R1", "q/match-22.xml": "R2"}, version="v2p2"
        ),
        "q/order-22.xml": QTI22_ORDER,
        "q/match-22.xml": QTI22_MATCH_AND_TEXT,
    }
    path.write_bytes(zip_bytes(entries))
    order, match = read_qti(path).items
    assert order == {
        "ref": "order-22",
        "type": "ordering",
        **FOREIGN,
        "stem": "<p>Put the words in order.</p>",
        "options": [
            {"id": "F1", "html": "パンを"},
            {"id": "F2", "html": "食べます"},
            {"id": "F3", "html": "毎朝"},
        ],
        "key": ["F3", "F1", "F2"],
    }
    assert match["type"] == "matching"
    assert match["stem"] == "<p>合うものを選んでください。</p>"
    assert [p["id"] for p in match["prompts"]] == ["P1", "P2"]
    assert [c["html"] for c in match["choices"]] == ["cat", "dog"]
    assert match["key"] == {"P1": "C2", "P2": "C1"}
    assert match["scoring"] == {"partial_credit": True}
    assert match["language"] == "ja"


def test_foreign_inline_text_entry_leaves_a_blank_in_the_stem(tmp_path: Path) -> None:
    """An inline text entry inside a sentence becomes the （　　） blank of the stem."""
    declaration = (
        '<qti-response-declaration identifier="R" cardinality="single" base-type="string">'
        "<qti-correct-response><qti-value>たべ</qti-value></qti-correct-response>"
        "</qti-response-declaration>"
    )
    xml = (
        f'<qti-assessment-item xmlns="{QTI3}" identifier="te-1" title="t">{declaration}'
        '<qti-item-body><p>パンを<qti-text-entry-interaction response-identifier="R"/>'
        "ます。</p></qti-item-body></qti-assessment-item>"
    ).encode()
    (tmp_path / "te.xml").write_bytes(xml)
    (item,) = read_qti(tmp_path / "te.xml").items
    assert item["stem"] == "<p>パンを（　　）ます。</p>"
    assert item["key"] == {"answers": [{"value": "たべ", "credit": 1.0}]}


# --------------------------------------------------------------------------- refusals


def test_broken_xml_is_refused_with_file_item_and_line(tmp_path: Path) -> None:
    """Malformed XML is refused naming the file, the item and the line."""
    broken = b'<qti-assessment-item xmlns="x" identifier="broken-1">\n<qti-item-body><p>x'
    path = package_of(tmp_path, {"items/broken-1.xml": broken})
    (problem,) = problems_of(path)
    assert "items/broken-1.xml" in problem and "broken-1" in problem and "line" in problem


def test_unknown_interaction_is_refused(tmp_path: Path) -> None:
    """An interaction the engine has no type for is refused, naming it."""
    essay = '<qti-extended-text-interaction response-identifier="RESPONSE"/>'
    path = package_of(tmp_path, {"items/essay.xml": qti3_item("essay-1", essay)})
    (problem,) = problems_of(path)
    assert "items/essay.xml" in problem and "essay-1" in problem
    assert "qti-extended-text-interaction" in problem


def test_missing_correct_response_is_refused(tmp_path: Path) -> None:
    """An item without a correct response cannot be scored, so it is refused."""
    xml = qti3_item("nokey-1").replace(
        b"<qti-correct-response><qti-value>A</qti-value></qti-correct-response>", b""
    )
    (problem,) = problems_of(package_of(tmp_path, {"items/nokey.xml": xml}))
    assert "items/nokey.xml" in problem and "nokey-1" in problem
    assert "no correct response" in problem


def test_duplicate_identifiers_are_refused(tmp_path: Path) -> None:
    """Two items with one identifier are refused: the bank would merge them."""
    path = package_of(
        tmp_path, {"items/one.xml": qti3_item("dup-1"), "items/two.xml": qti3_item("dup-1")}
    )
    (problem,) = problems_of(path)
    assert "items/two.xml" in problem and "items/one.xml" in problem and "dup-1" in problem


def test_missing_media_file_is_refused(tmp_path: Path) -> None:
    """An image the item uses must be in the package."""
    xml = qti3_item("pic-1", body='<p><img src="../media/nope.png" alt=""/></p>')
    (problem,) = problems_of(package_of(tmp_path, {"items/pic.xml": xml}))
    assert "items/pic.xml" in problem and "pic-1" in problem and "media/nope.png" in problem


def test_manifest_resource_pointing_at_missing_file_is_refused(tmp_path: Path) -> None:
    """A manifest resource whose file is absent is refused."""
    entries = {"imsmanifest.xml": manifest({"items/ghost.xml": "R-ghost"})}
    path = tmp_path / "ghost.zip"
    path.write_bytes(zip_bytes(entries))
    (problem,) = problems_of(path)
    assert "R-ghost" in problem and "items/ghost.xml" in problem


def test_zip_slip_entry_is_refused(tmp_path: Path) -> None:
    """Entries with '..' or absolute paths are refused (zip slip)."""
    path = package_of(
        tmp_path,
        {"items/ok.xml": qti3_item("ok-1")},
        {"../evil.xml": b"<x/>", "/etc/evil": b"x"},
    )
    problems = problems_of(path)
    assert any("../evil.xml" in p and "zip slip" in p for p in problems)
    assert any("/etc/evil" in p and "absolute" in p for p in problems)


def test_symlink_entry_is_refused(tmp_path: Path) -> None:
    """A symbolic link inside the zip is refused."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest({}))
        link = zipfile.ZipInfo("media/link.png")
        link.create_system = 3
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    path = tmp_path / "link.zip"
    path.write_bytes(buffer.getvalue())
    (problem,) = problems_of(path)
    assert "media/link.png" in problem and "symbolic link" in problem


def test_zip_bomb_entry_is_refused(tmp_path: Path) -> None:
    """A highly compressed large entry (over 100:1 and 1 MB) is refused, and its item too."""
    xml = qti3_item("bomb-1", body='<p><img src="../media/bomb.png" alt=""/></p>')
    path = package_of(tmp_path, {"items/bomb.xml": xml}, {"media/bomb.png": bytes(3_000_000)})
    problems = problems_of(path)
    assert any("media/bomb.png" in p and "zip bomb" in p for p in problems)
    assert any("items/bomb.xml" in p and "bomb-1" in p for p in problems)


def test_oversized_entry_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry above the per-entry size cap is refused (cap lowered to keep the test small)."""
    monkeypatch.setattr(qti, "MAX_ENTRY_BYTES", 1000)
    path = tmp_path / "big.zip"
    entries = {"imsmanifest.xml": manifest({}), "media/big.wav": os.urandom(5000)}
    path.write_bytes(zip_bytes(entries, zipfile.ZIP_STORED))
    (problem,) = problems_of(path)
    assert "media/big.wav" in problem and "exceeds" in problem


def test_doctype_with_entity_is_refused(tmp_path: Path) -> None:
    """DOCTYPE/ENTITY declarations are refused outright (XXE), naming file and item."""
    xml = qti3_item("xxe-1", body="<p>&xxe;</p>").replace(
        b"\n",
        b'\n<!DOCTYPE qti-assessment-item [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
        1,
    )
    (problem,) = problems_of(package_of(tmp_path, {"items/xxe.xml": xml}))
    assert "items/xxe.xml" in problem and "xxe-1" in problem and "DOCTYPE" in problem


def test_folder_paths_outside_the_folder_are_refused(tmp_path: Path) -> None:
    """In a folder, a symlink or href leading outside it is never read."""
    (tmp_path / "secret.png").write_bytes(b"secret")
    folder = tmp_path / "pkg"
    (folder / "media").mkdir(parents=True)
    (folder / "media" / "link.png").symlink_to(tmp_path / "secret.png")
    body = '<p><img src="../media/link.png" alt=""/><img src="../../secret.png" alt=""/></p>'
    (folder / "items").mkdir()
    (folder / "items" / "a.xml").write_bytes(qti3_item("out-1", body=body))
    (folder / "imsmanifest.xml").write_bytes(manifest({"items/a.xml": "R"}))
    problems = problems_of(folder)
    assert any("outside the folder" in p for p in problems)
    assert any("out-1" in p and "outside the package" in p for p in problems)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Problems from several files are collected and raised together (all-or-nothing)."""
    essay = '<qti-extended-text-interaction response-identifier="RESPONSE"/>'
    path = package_of(
        tmp_path,
        {
            "items/good.xml": qti3_item("good-1"),
            "items/bad1.xml": b"<not-closed",
            "items/bad2.xml": qti3_item("bad-2", essay),
            "items/bad3.xml": qti3_item("bad-3", body='<img src="nope.png"/>'),
        },
    )
    problems = problems_of(path)
    assert len(problems) == 3
    assert [p.split(":")[0] for p in problems] == [
        "items/bad1.xml (item ?)",
        "items/bad2.xml",
        "items/bad3.xml",
    ]


def test_export_refuses_missing_media_and_unknown_stimulus(tmp_path: Path) -> None:
    """Export is all-or-nothing: missing media or stimuli are reported and nothing written."""
    bundle = make_bundle()
    del bundle.media["media/opt-b.png"]
    bundle.items[6]["stimulus"] = "no-such-stimulus"
    bundle.items[2]["stem"] = '<p><img src="../secret.png" alt=""></p>'
    bundle.items.append("not a mapping")
    out = tmp_path / "out.zip"
    with pytest.raises(InvalidItem) as caught:
        write_qti_package(bundle, out)
    text = "\n".join(caught.value.problems)
    assert "n5-vocab-001" in text and "media/opt-b.png" in text
    assert "n5-match-007" in text and "no-such-stimulus" in text
    assert "n5-mr-003" in text and "outside the package" in text
    assert "an item must be a mapping" in text
    assert not out.exists()
