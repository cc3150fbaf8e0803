"""hub views: the revision ids Hugging Face clients were handed for a release seen with some
of its components, so that each keeps resolving (app/hfcompat/views.py)

Revision ID: 7c3d9e1f5a20
Revises: 2e60e263516a
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = '7c3d9e1f5a20'
down_revision: str | None = '2e60e263516a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'hub_views',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('revision', sa.String(length=40), nullable=False),
        sa.Column('release_id', sa.Integer(), nullable=False),
        sa.Column('component_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['release_id'],
            ['releases.id'],
            name=op.f('fk_hub_views_release_id_releases'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_hub_views')),
        sa.UniqueConstraint('revision', name=op.f('uq_hub_views_revision')),
    )
    with op.batch_alter_table('hub_views', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hub_views_release_id'), ['release_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('hub_views', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hub_views_release_id'))
    op.drop_table('hub_views')
