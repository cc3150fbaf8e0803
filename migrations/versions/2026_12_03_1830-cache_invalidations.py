"""cache invalidations: a row per committed change that per-process caches must not outlive,
written by triggers on the tables they read (app/freshness.py)

Revision ID: 3f8a21c7d915
Revises: 7c3d9e1f2a64
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '3f8a21c7d915'
down_revision: str | None = '7c3d9e1f2a64'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Table -> the columns whose UPDATE invalidates (None: any change). Frozen here as of this
# revision; app/freshness.py holds the same rule for the writing process itself. Columns
# left out change on hot paths and are not cached facts (an API key's last use, a stage's
# transition and reminder stamps, a key's or secret's expiry reminder).
WATCHED: dict[str, tuple[str, ...] | None] = {
    'api_keys': ('user_id', 'key_hash', 'expires_at', 'revoked_at'),
    'users': ('email', 'role', 'disabled_at', 'partner_id'),
    'partners': ('disabled_at',),
    'partner_agreements': None,
    'grants': None,
    'models': None,
    'releases': None,
    'components': None,
    'stages': ('component_id', 'tier', 'at'),
    'release_files': None,
    'release_signatures': None,
    'hub_views': None,
}


def upgrade() -> None:
    op.create_table(
        'cache_invalidations',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cache_invalidations')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        # One row per statement (not per row): a bulk change is one invalidation. An insert
        # takes no lock another writer waits for, unlike bumping one shared counter row.
        op.execute(
            """
            CREATE FUNCTION wg_cache_invalidate() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO cache_invalidations (source, at) VALUES (TG_TABLE_NAME, now());
                RETURN NULL;
            END $$
            """
        )
        for table, columns in WATCHED.items():
            update = f"UPDATE OF {', '.join(columns)}" if columns else 'UPDATE'
            op.execute(
                f'CREATE TRIGGER wg_cache_invalidate_{table} '
                f'AFTER INSERT OR {update} OR DELETE ON {table} '
                'FOR EACH STATEMENT EXECUTE FUNCTION wg_cache_invalidate()'
            )
        return
    # SQLite has row triggers only.
    stamp = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    for table, columns in WATCHED.items():
        update = f"UPDATE OF {', '.join(columns)}" if columns else 'UPDATE'
        for event, suffix in (('INSERT', 'ins'), (update, 'upd'), ('DELETE', 'del')):
            op.execute(
                f'CREATE TRIGGER wg_cache_invalidate_{table}_{suffix} AFTER {event} ON {table} '
                f"BEGIN INSERT INTO cache_invalidations (source, at) VALUES ('{table}', {stamp}); "
                'END'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for table in WATCHED:
            op.execute(f'DROP TRIGGER IF EXISTS wg_cache_invalidate_{table} ON {table}')
        op.execute('DROP FUNCTION IF EXISTS wg_cache_invalidate()')
    else:
        for table in WATCHED:
            for suffix in ('ins', 'upd', 'del'):
                op.execute(f'DROP TRIGGER IF EXISTS wg_cache_invalidate_{table}_{suffix}')
    op.drop_table('cache_invalidations')
