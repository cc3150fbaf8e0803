"""schema lineage: every revision the schema contains, so older code can tell the database
is newer than it needs rather than different (app/models/schema.py)

Revision ID: 5a1e7c0d9b21
Revises: 5b1e7d2a9c40
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5a1e7c0d9b21'
down_revision: str | None = '5b1e7d2a9c40'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Filled in by migrations/env.py at the end of every migration run.
    op.create_table(
        'schema_lineage',
        sa.Column('revision', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('revision', name=op.f('pk_schema_lineage')),
    )


def downgrade() -> None:
    op.drop_table('schema_lineage')
