"""partner previous secret: the secret a planned rotation replaced, accepted until a time

Revision ID: c0efaf03861a
Revises: f0163328796b
Create Date: 2026-11-30 05:22:50.992020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = 'c0efaf03861a'
down_revision: str | None = 'f0163328796b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('partners', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_hash')
