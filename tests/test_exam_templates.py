"""Blueprint validation, form assembly and the catalogue."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import replace

import pytest
import yaml
from sqlalchemy import select

from exam_templates.assembly import assemble_form
from exam_templates.blueprint import parse_blueprint
from exam_templates.errors import AssemblyError, InvalidTemplate
from exam_templates.services import (
    BLUEPRINTS_DIR,
    build_form,
    catalogue,
    current_templates,
    load_templates,
    read_template_documents,
)
from item_bank.models import ItemVersion
from item_bank.services import PoolEntry
from testing_center.extensions import db
from testing_center.seed import seed_content

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
SHIPPED = yaml.safe_load((BLUEPRINTS_DIR / "jft_basic_practice.yaml").read_text("utf-8"))


def pool(section: str, size: int) -> list[PoolEntry]:
    return [
        PoolEntry(
            item_id=hash((section, n)) % 10**9,
            item_ref=f"{section}-{n:03d}",
            version_id=n,
            item_type="single_choice",
            topic="t",
            option_ids=("A", "B", "C", "D"),
        )
        for n in range(size)
    ]


def pools(size: int = 10) -> dict[tuple[int, int], list[PoolEntry]]:
    return {(i, 0): pool(s["code"], size) for i, s in enumerate(SHIPPED["sections"])}


def test_shipped_template_is_valid():
    """The shipped practice template parses: 4 sections, 16 items, 20 minutes, pass 200."""
    blueprint = parse_blueprint(SHIPPED)
    assert blueprint.item_count == 16
    assert blueprint.duration_seconds == 1200
    assert blueprint.scoring.describe()["pass_rule"]["total_min"] == 200


def test_invalid_template_lists_every_problem():
    """A template with several mistakes gets all of them reported at once."""
    document = copy.deepcopy(SHIPPED)
    document["modes"] = ["online"]
    document["clock"]["duration_seconds"] = 0
    document["sections"][1]["select"]["count"] = -1
    document["sections"][2]["select"]["colour"] = "red"
    document["scoring"] = {"rule": "magic"}
    with pytest.raises(InvalidTemplate) as raised:
        parse_blueprint(document)
    text = " | ".join(raised.value.problems)
    for fragment in (
        "modes",
        "clock.duration_seconds",
        "sections[1].parts[0].count",
        "sections[2].parts[0].select.colour",
        "scoring.rule",
    ):
        assert fragment in text


def test_assembly_is_reproducible_from_seed():
    """The same seed gives the same form; another seed a different one."""
    blueprint = parse_blueprint(SHIPPED)
    first = assemble_form(blueprint, pools(), seed=42)
    assert assemble_form(blueprint, pools(), seed=42) == first
    assert assemble_form(blueprint, pools(), seed=43) != first
    assert [len(s.items) for s in first.sections] == [4, 4, 4, 4]
    assert {tuple(sorted(i.option_order)) for s in first.sections for i in s.items} == {
        ("A", "B", "C", "D")
    }


def test_assembly_never_repeats_an_item():
    """No item appears twice in one form."""
    form = assemble_form(parse_blueprint(SHIPPED), pools(4), seed=1)
    ids = [i.version_id for s in form.sections for i in s.items]
    refs = {(s.code, i.version_id) for s in form.sections for i in s.items}
    assert len(refs) == len(ids) == 16


def test_assembly_fails_with_a_clear_reason():
    """A bank too small for a section is named with what is needed and what there is."""
    short = pools()
    short[(3, 0)] = short[(3, 0)][:2]
    with pytest.raises(
        AssemblyError,
        match=r"section reading_comprehension needs 4 approved "
        r"items \(exam_family=jft_basic, "
        r"section=reading_comprehension\); the bank has 2",
    ):
        assemble_form(parse_blueprint(SHIPPED), short, seed=1)


def test_catalogue_reports_availability(app):
    """Without items the catalogue lists the exam as unavailable and says why."""
    with app.app_context():
        load_templates(db.session, [SHIPPED], now=NOW)
        [entry] = catalogue(db.session)
        assert entry.available is False
        assert "needs 4 approved items" in entry.unavailable_reason


def test_changed_template_needs_new_version(app):
    """Loading different content under a stored code and version is refused."""
    with app.app_context():
        load_templates(db.session, [SHIPPED], now=NOW)
        changed = copy.deepcopy(SHIPPED)
        changed["clock"]["duration_seconds"] = 1500
        with pytest.raises(InvalidTemplate, match="new version"):
            load_templates(db.session, [changed], now=NOW)
        assert load_templates(db.session, [SHIPPED], now=NOW) == 0


ASSEMBLED_FROM_SAMPLES = {
    "jft-basic",
    "jft-basic-practice",
    "jlpt-n5",
    "jlpt-n4-practice",
    "jlpt-n3-practice",
    "jlpt-n2-practice",
    "jlpt-n1-practice",
    "ssw-nursing-care-practice",
    "ssw-nursing-care-japanese-practice",
    "ssw-food-service-practice",
    "ssw-construction-practice",
    "ssw-accommodation-practice",
    "ssw-agriculture-practice",
    "item-types-tour",
}


def test_every_shipped_template_validates():
    """Each shipped template parses; full JLPT forms keep the official clocks."""
    blueprints = {
        b.code: b
        for b in map(
            parse_blueprint, read_template_documents(sorted(BLUEPRINTS_DIR.glob("*.yaml")))
        )
    }
    assert set(blueprints) >= ASSEMBLED_FROM_SAMPLES
    n4 = blueprints["jlpt-n4"]
    assert [s.duration_seconds // 60 for s in n4.sections] == [25, 55, 35]
    assert n4.scoring_sections == ["lk_reading", "listening"]
    n1 = blueprints["jlpt-n1"]
    assert [s.duration_seconds // 60 for s in n1.sections] == [110, 55]
    assert n1.scoring_sections == ["language_knowledge", "reading", "listening"]
    assert blueprints["jft-basic"].duration_seconds == 3600


def test_jlpt_blueprint_may_score_by_irt_per_section():
    """The README's per-section irt example is a valid scoring rule for the N4 form."""
    readme = (BLUEPRINTS_DIR.parent / "README.md").read_text("utf-8")
    example = yaml.safe_load(readme.split("```yaml\n", 1)[1].split("```", 1)[0])
    document = yaml.safe_load((BLUEPRINTS_DIR / "jlpt_n4.yaml").read_text("utf-8"))
    document["scoring"] = example["scoring"]
    blueprint = parse_blueprint(document)
    assert blueprint.scoring.name == "irt"
    assert blueprint.scoring.describe()["pass_rule"] == {
        "total_min": 90,
        "section_minimums": {"lk_reading": 38, "listening": 19},
    }
    assert blueprint.scoring.describe()["scale"]["max"] == 180


def test_sample_bank_assembles_the_promised_forms(app):
    """Full JFT-Basic and JLPT N5 forms and every practice variant assemble from the
    samples; the other full forms say what the bank lacks."""
    with app.app_context():
        seed_content(db.session, NOW)
        entries = {entry.template.code: entry for entry in catalogue(db.session)}
        for code, entry in entries.items():
            if code in ASSEMBLED_FROM_SAMPLES:
                assert entry.available, (code, entry.unavailable_reason)
                form = build_form(db.session, entry.template, seed=7)
                assert sum(len(s.items) for s in form.sections) == entry.blueprint.item_count
            else:
                assert not entry.available
                assert "the bank has" in entry.unavailable_reason
        db.session.rollback()


def test_sets_stay_whole_and_in_order(app):
    """Items sharing a passage are drawn together, in order, in the N5 form."""
    with app.app_context():
        seed_content(db.session, NOW, samples=["jlpt_n5", "jlpt_n5_listening"])
        template = next(t for t in current_templates(db.session) if t.code == "jlpt-n5")
        form = build_form(db.session, template, seed=3)
        refs = {
            v.id: (v.item.ref, v.item.group_ref) for v in db.session.scalars(select(ItemVersion))
        }
        grouped = [
            refs[i.version_id] for s in form.sections for i in s.items if refs[i.version_id][1]
        ]
        groups = [group for _, group in grouped]
        for group in set(groups):
            positions = [n for n, g in enumerate(groups) if g == group]
            assert positions == list(range(positions[0], positions[0] + len(positions)))
        db.session.rollback()


def test_enemies_never_share_a_form():
    """Two enemy items are never drawn into one form."""
    blueprint = parse_blueprint(SHIPPED)
    pool_by_part = pools(4)
    first, second = pool_by_part[(0, 0)][0], pool_by_part[(0, 0)][1]
    pair = (min(first.item_id, second.item_id), max(first.item_id, second.item_id))
    for seed in range(20):
        with pytest.raises(AssemblyError):
            assemble_form(blueprint, pool_by_part, seed, enemies={pair})
    roomy = pools(6)
    pair = (
        min(roomy[(0, 0)][0].item_id, roomy[(0, 0)][1].item_id),
        max(roomy[(0, 0)][0].item_id, roomy[(0, 0)][1].item_id),
    )
    for seed in range(20):
        form = assemble_form(blueprint, roomy, seed, enemies={pair})
        chosen = {i.item_id for i in form.sections[0].items}
        assert not set(pair) <= chosen


def test_exposure_control_prefers_unseen_items():
    """Items shown less often are chosen first."""
    blueprint = parse_blueprint(SHIPPED)
    pool_by_part = pools(8)
    seen = {entry.item_id: 5 for entry in pool_by_part[(0, 0)][:4]}
    form = assemble_form(blueprint, pool_by_part, 1, exposure=seen)
    assert not {i.item_id for i in form.sections[0].items} & set(seen)


def test_topic_balance_spreads_items():
    """With balance: topic, a part takes items from every topic before repeating one."""
    document = copy.deepcopy(SHIPPED)
    document["sections"][0]["select"]["count"] = 4
    document["sections"][0]["parts"] = [
        {"select": {"section": "script_vocabulary"}, "count": 4, "balance": "topic"}
    ]
    del document["sections"][0]["select"]
    blueprint = parse_blueprint(document)
    entries = [
        PoolEntry(
            item_id=n,
            item_ref=f"r{n:02d}",
            version_id=n,
            item_type="single_choice",
            topic=f"topic{n % 4}",
            option_ids=("A", "B", "C"),
        )
        for n in range(16)
    ]
    pool_by_part = {**pools(), (0, 0): entries}
    for seed in range(5):
        form = assemble_form(blueprint, pool_by_part, seed)
        topics = {f"topic{i.item_id % 4}" for i in form.sections[0].items}
        assert len(topics) == 4


def set_pool(sizes: list[int]) -> list[PoolEntry]:
    """Entries forming sets of the given sizes (refs numbered past 9 to test ordering)."""
    entries, number = [], 0
    for set_number, size in enumerate(sizes):
        for position in range(size):
            number += 1
            entries.append(
                PoolEntry(
                    item_id=number,
                    item_ref=f"set{set_number}-q{position + 8}",
                    version_id=number,
                    item_type="single_choice",
                    topic="t",
                    option_ids=("A", "B", "C"),
                    group=f"set{set_number}",
                )
            )
    return entries


def test_sets_that_add_up_are_found():
    """Sets of 4, 3 and 3 fill a count of 6 (with 3 + 3) for every seed."""
    document = copy.deepcopy(SHIPPED)
    document["sections"] = [
        {
            "code": "reading",
            "title": {"en": "R"},
            "parts": [{"select": {"section": "r"}, "count": 6}],
        }
    ]
    blueprint = parse_blueprint(document)
    for seed in range(50):
        form = assemble_form(blueprint, {(0, 0): set_pool([4, 3, 3])}, seed)
        assert len(form.sections[0].items) == 6


def test_set_order_is_natural():
    """A set's items come in reading order (q8, q9, q10), not string order."""
    document = copy.deepcopy(SHIPPED)
    document["sections"] = [
        {
            "code": "reading",
            "title": {"en": "R"},
            "parts": [{"select": {"section": "r"}, "count": 3}],
        }
    ]
    form = assemble_form(parse_blueprint(document), {(0, 0): set_pool([3])}, 1)
    assert [i.item_id for i in form.sections[0].items] == [1, 2, 3]


def test_sets_are_not_split_by_a_difficulty_window():
    """A set with one item outside the facility window is left out whole."""
    document = copy.deepcopy(SHIPPED)
    document["sections"] = [
        {
            "code": "reading",
            "title": {"en": "R"},
            "parts": [
                {"select": {"section": "r"}, "count": 2, "difficulty": {"p_min": 0.3, "p_max": 0.8}}
            ],
        }
    ]
    entries = [replace(e, p=0.5) for e in set_pool([3, 2])]
    entries[1] = replace(entries[1], p=0.95)
    form = assemble_form(parse_blueprint(document), {(0, 0): entries}, 1)
    assert [i.item_id for i in form.sections[0].items] == [4, 5]


def test_forms_differ_for_candidates_starting_together():
    """With nearly equal exposure, different seeds still give different forms."""
    blueprint = parse_blueprint(SHIPPED)
    pool_by_part = pools(12)
    forms = {
        tuple(
            i.item_id
            for s in assemble_form(blueprint, pool_by_part, seed).sections
            for i in s.items
        )
        for seed in range(20)
    }
    assert len(forms) > 10
