"""The per-process cache of assembly pools follows every change of the bank, whoever
makes it (``exam_templates.services.FORM_POOLS``, ``item_bank.revision``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import event, select

from exam_templates.blueprint import parse_blueprint
from exam_templates.services import FORM_POOLS, build_form, current_templates, load_templates
from item_bank.bundle import Bundle
from item_bank.models import Item
from item_bank.revision import current_revision
from item_bank.services import import_bundles
from item_bank.workflow import item_by_ref, retire
from testing_center.extensions import db

from .conftest import settings_for

TEMPLATE = {
    "code": "pool-check",
    "version": 1,
    "title": {"en": "Pool check"},
    "modes": ["practice"],
    "clock": {"kind": "shared", "duration_seconds": 600},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "pools", "section": "all", "count": 2},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


def item(n: int, **extra) -> dict:
    return {
        "ref": f"fp-{n}",
        "type": "single_choice",
        "exam_family": "pools",
        "level": "A2",
        "section": "all",
        "topic": "t",
        "stem": f"<p>{n}</p>",
        "options": [{"id": k, "html": k} for k in "ABC"],
        "key": "A",
        **extra,
    }


def add_items(clock, *documents: dict) -> None:
    import_bundles(db.session, [Bundle(items=list(documents))], status="approved", now=clock())


@pytest.fixture
def bank(app, clock):
    """Three approved items and the template drawing two of them, committed; the bank
    has a revision token, so the pools are cached (every test empties the tables)."""
    with app.app_context():
        add_items(clock, item(0), item(1), item(2))
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()
        assert current_revision(db.session) is not None


def cached() -> tuple:
    """(item refs of the template's pools, enemy pairs as refs) through the cache."""
    template = next(t for t in current_templates(db.session) if t.code == TEMPLATE["code"])
    pools = FORM_POOLS.get(db.session, template, parse_blueprint(template.definition))
    refs = dict(db.session.execute(select(Item.id, Item.ref)).all())
    return (
        {refs[i] for i in pools.item_ids},
        {tuple(sorted((refs[a], refs[b]))) for a, b in pools.enemies},
    )


def test_unchanged_bank_is_read_once(app, bank):
    """While the bank is unchanged, a build reads only the revision token, not the pools."""
    with app.app_context():
        template = next(t for t in current_templates(db.session) if t.code == TEMPLATE["code"])
        build_form(db.session, template, seed=1)
        statements = []
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        build_form(db.session, template, seed=2)
        assert len(statements) == 1
        assert "bank_revisions" in statements[0]


def test_approved_item_joins_cached_pools(app, bank, clock):
    """An item approved after the pools were cached is in the next build's pools."""
    with app.app_context():
        assert cached()[0] == {"fp-0", "fp-1", "fp-2"}
        add_items(clock, item(3))
        db.session.commit()
        assert cached()[0] == {"fp-0", "fp-1", "fp-2", "fp-3"}


def test_retired_item_leaves_cached_pools(app, bank, clock):
    """An item retired after the pools were cached is never drawn again."""
    with app.app_context():
        assert "fp-1" in cached()[0]
        retire(db.session, item_by_ref(db.session, "fp-1"), None, clock())
        db.session.commit()
        assert cached()[0] == {"fp-0", "fp-2"}


def test_new_enemy_pair_reaches_cached_pools(app, bank, clock):
    """Enemies named by a new version after the pools were cached keep the pair apart."""
    with app.app_context():
        assert cached()[1] == set()
        add_items(clock, item(0, enemies=["fp-2"]))
        db.session.commit()
        assert cached()[1] == {("fp-0", "fp-2")}


def test_rolled_back_change_is_not_kept(app, bank, clock):
    """Pools read inside a transaction that rolled back are not served afterwards."""
    with app.app_context():
        retire(db.session, item_by_ref(db.session, "fp-1"), None, clock())
        assert cached()[0] == {"fp-0", "fp-2"}
        db.session.rollback()
        assert cached()[0] == {"fp-0", "fp-1", "fp-2"}


def test_change_by_another_process_is_seen(app, bank, database_url):
    """An item retired by another process (another worker or host) leaves this one's
    cached pools: the change travels through the database, not through this process."""
    with app.app_context():
        assert "fp-2" in cached()[0]
        db.session.commit()
    script = textwrap.dedent(
        """
        import datetime as dt, json, sys
        from item_bank.workflow import item_by_ref, retire
        from testing_center import create_app
        from testing_center.extensions import db
        app = create_app(json.loads(sys.argv[1]))
        with app.app_context():
            retire(db.session, item_by_ref(db.session, "fp-2"), None, dt.datetime.now(dt.UTC))
            db.session.commit()
        """
    )
    settings = {k: v for k, v in settings_for(database_url).items() if k != "TESTING"}
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(settings)], check=True, env=dict(os.environ)
    )
    with app.app_context():
        assert cached()[0] == {"fp-0", "fp-1"}
