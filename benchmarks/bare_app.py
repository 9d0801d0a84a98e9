"""The bare stack: Flask + SQLAlchemy doing one authenticated single-row upsert.

The yardstick of the exam-day benchmark (issue 8): the least any answer-save endpoint
on this stack must do - look the bearer token up in a table, upsert one row unless a
newer save is stored (``client_seq``), commit, answer JSON. Served by the same gunicorn
settings against the same PostgreSQL as the application::

    DATABASE_URL=postgresql://... gunicorn 'benchmarks.bare_app:create_app()'

``create_schema`` and ``issue_tokens`` prepare its two tables (the benchmark calls them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets

import sqlalchemy as sa
from flask import Flask, jsonify, request
from sqlalchemy.dialects.postgresql import JSONB, insert

metadata = sa.MetaData()
tokens = sa.Table(
    "bare_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
)
answers = sa.Table(
    "bare_answers",
    metadata,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("item_ref", sa.String(16), primary_key=True),
    sa.Column("value", JSONB),
    sa.Column("client_seq", sa.Integer, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)


def engine_for(url: str) -> sa.Engine:
    """The same driver and pool options as the application's engine."""
    from testing_center.config import DEFAULTS, database_uri

    return sa.create_engine(database_uri(url), **DEFAULTS["SQLALCHEMY_ENGINE_OPTIONS"])


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_schema(url: str) -> None:
    engine = engine_for(url)
    metadata.create_all(engine)
    engine.dispose()


def issue_tokens(url: str, user_ids: list[int]) -> dict[int, str]:
    """One bearer token per user id."""
    issued = {user_id: secrets.token_urlsafe(32) for user_id in user_ids}
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            tokens.insert(),
            [{"token_hash": digest(t), "user_id": u} for u, t in issued.items()],
        )
    engine.dispose()
    return issued


def create_app() -> Flask:
    app = Flask(__name__)
    engine = engine_for(os.environ["DATABASE_URL"])

    @app.get("/healthz")
    def health():
        return {"status": "ok"}

    @app.put("/answers/<item_ref>")
    def save(item_ref: str):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        body = request.get_json(silent=True) or {}
        seq = body.get("client_seq")
        if scheme.lower() != "bearer" or not token or not isinstance(seq, int):
            return jsonify(error={"code": "bad_request"}), 400
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as connection:
            user_id = connection.execute(
                sa.select(tokens.c.user_id).where(tokens.c.token_hash == digest(token))
            ).scalar()
            if user_id is None:
                return jsonify(error={"code": "invalid_token"}), 401
            statement = insert(answers).values(
                user_id=user_id,
                item_ref=item_ref,
                value=body.get("response"),
                client_seq=seq,
                saved_at=now,
            )
            stored = connection.execute(
                statement.on_conflict_do_update(
                    index_elements=[answers.c.user_id, answers.c.item_ref],
                    set_={
                        "value": statement.excluded.value,
                        "client_seq": statement.excluded.client_seq,
                        "saved_at": statement.excluded.saved_at,
                    },
                    where=answers.c.client_seq < statement.excluded.client_seq,
                ).returning(answers.c.value, answers.c.client_seq)
            ).first()
        accepted = stored is not None
        return jsonify(
            item_ref=item_ref,
            accepted=accepted,
            client_seq=seq,
            response=stored.value if accepted else None,
            server_time=now.isoformat(),
        )

    return app
