"""release signatures: one row per signed component of a published release, and its
revocation (app/models/signatures.py)

Revision ID: 7c3d9e1f2a64
Revises: 7c3d9e1f5a20
Create Date: 2026-12-03 16:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7c3d9e1f2a64'
down_revision: str | None = '7c3d9e1f5a20'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'release_signatures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('release_id', sa.Integer(), nullable=False),
        sa.Column('component_id', sa.Integer(), nullable=False),
        sa.Column('file_id', sa.Integer(), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoke_reason', sa.Text(), nullable=True),
        sa.Column('revoked_by', sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ['component_id'], ['components.id'],
            name=op.f('fk_release_signatures_component_id_components'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['file_id'], ['release_files.id'],
            name=op.f('fk_release_signatures_file_id_release_files'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['release_id'], ['releases.id'],
            name=op.f('fk_release_signatures_release_id_releases'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_release_signatures')),
        sa.UniqueConstraint('component_id', name=op.f('uq_release_signatures_component_id')),
        sa.UniqueConstraint('file_id', name=op.f('uq_release_signatures_file_id')),
    )
    op.create_index(
        op.f('ix_release_signatures_release_id'), 'release_signatures', ['release_id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_release_signatures_release_id'), table_name='release_signatures')
    op.drop_table('release_signatures')
