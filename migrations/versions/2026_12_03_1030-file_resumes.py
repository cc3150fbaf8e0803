"""file resumes: per token and file, the uses taken on it and the bytes its resumes handed out

A Range request continuing a file its token started takes no use, but only while the bytes
that continuations hand out stay within the file's size per use taken on it: otherwise a
shared one-use token served ``Range: bytes=0-`` to anyone until it expired.

Revision ID: 5b1e7d2a9c40
Revises: c0efaf03861a
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5b1e7d2a9c40'
down_revision: str | None = 'c0efaf03861a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('token_file_starts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uses', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(
            sa.Column('resumed', sa.BigInteger(), server_default='0', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('token_file_starts', schema=None) as batch_op:
        batch_op.drop_column('resumed')
        batch_op.drop_column('uses')
