"""Blueprint validation, form assembly and the catalogue."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from exam_templates.assembly import assemble_form
from exam_templates.blueprint import parse_blueprint
from exam_templates.errors import AssemblyError, InvalidTemplate
from exam_templates.services import BLUEPRINTS_DIR, catalogue, load_templates
from item_bank.services import PoolEntry
from testing_center.extensions import db

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
    """The shipped practice template parses: 3 sections, 12 items, 15 minutes, 60% to pass."""
    blueprint = parse_blueprint(SHIPPED)
    assert blueprint.item_count == 12
    assert blueprint.duration_seconds == 900
    assert blueprint.scoring.describe()["pass_rule"] == {"min_percent": 60.0}


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
    assert [len(s.items) for s in first.sections] == [4, 4, 4]
    assert {tuple(sorted(i.option_order)) for s in first.sections for i in s.items} == {
        ("A", "B", "C", "D")
    }


def test_assembly_never_repeats_an_item():
    """No item appears twice in one form."""
    form = assemble_form(parse_blueprint(SHIPPED), pools(4), seed=1)
    ids = [i.version_id for s in form.sections for i in s.items]
    refs = {(s.code, i.version_id) for s in form.sections for i in s.items}
    assert len(refs) == len(ids) == 12


def test_assembly_fails_with_a_clear_reason():
    """A bank too small for a section is named with what is needed and what there is."""
    short = pools()
    short[(2, 0)] = short[(2, 0)][:2]
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
        changed["clock"]["duration_seconds"] = 1200
        with pytest.raises(InvalidTemplate, match="new version"):
            load_templates(db.session, [changed], now=NOW)
        assert load_templates(db.session, [SHIPPED], now=NOW) == 0
