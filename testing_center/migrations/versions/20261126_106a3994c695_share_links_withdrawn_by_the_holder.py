"""share links withdrawn by the holder

Revision ID: 106a3994c695
Revises: d5497b26d1f7
Create Date: 2026-11-26 23:32:53.924015

A holder can end a share link before it expires: ``withdrawn_at`` replaces the
``revoked`` flag, which nothing ever set (a link flagged so counts as withdrawn when it
was made).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '106a3994c695'
down_revision = 'd5497b26d1f7'
branch_labels = None
depends_on = None

links = sa.table(
    'certificate_share_links',
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('withdrawn_at', sa.DateTime(timezone=True)),
    sa.column('revoked', sa.Boolean()),
)


def upgrade():
    with op.batch_alter_table('certificate_share_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        links.update().where(links.c.revoked == sa.true()).values(withdrawn_at=links.c.created_at)
    )
    with op.batch_alter_table('certificate_share_links', schema=None) as batch_op:
        batch_op.drop_column('revoked')


def downgrade():
    with op.batch_alter_table('certificate_share_links', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('revoked', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(links.update().where(links.c.withdrawn_at.isnot(None)).values(revoked=True))
    with op.batch_alter_table('certificate_share_links', schema=None) as batch_op:
        batch_op.drop_column('withdrawn_at')
