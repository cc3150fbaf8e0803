"""safety reports: reports and their history, per-model hold policies, the holds they placed;
webhook subscriptions that opt in to reports' text; who placed a component's hold

Revision ID: 2e60e263516a
Revises: 7c0a51e3b8d2
Create Date: 2026-12-03 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "2e60e263516a"
down_revision: str | None = "7c0a51e3b8d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "safety_policies",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("min_reporters", sa.Integer(), nullable=False),
        sa.Column("min_severity", sa.String(length=16), nullable=False),
        sa.Column("window_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_safety_policies_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_safety_policies")),
    )
    op.create_table(
        "safety_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("triaged_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["safety_reports.id"],
            name=op.f("fk_safety_reports_duplicate_of_safety_reports"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_safety_reports_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_safety_reports_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["release_id"],
            ["releases.id"],
            name=op.f("fk_safety_reports_release_id_releases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_safety_reports_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_reports")),
    )
    with op.batch_alter_table("safety_reports", schema=None) as batch_op:
        batch_op.create_index("ix_safety_reports_model", ["model_id", "id"], unique=False)
        batch_op.create_index("ix_safety_reports_reporter", ["reporter", "id"], unique=False)
        batch_op.create_index("ix_safety_reports_status", ["status", "id"], unique=False)

    op.create_table(
        "safety_report_components",
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("component_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_safety_report_components_component_id_components"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["safety_reports.id"],
            name=op.f("fk_safety_report_components_report_id_safety_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "report_id", "component_id", name=op.f("pk_safety_report_components")
        ),
    )
    with op.batch_alter_table("safety_report_components", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_safety_report_components_component_id"), ["component_id"], unique=False
        )

    op.create_table(
        "safety_report_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["safety_reports.id"],
            name=op.f("fk_safety_report_updates_report_id_safety_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_report_updates")),
    )
    with op.batch_alter_table("safety_report_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_safety_report_updates_report_id"), ["report_id"], unique=False
        )

    op.create_table(
        "safety_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("component_id", sa.Integer(), nullable=False),
        sa.Column("stage_id", sa.Integer(), nullable=True),
        sa.Column("stage_tier", sa.String(length=16), nullable=False),
        sa.Column("stage_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("placed_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reports", sa.JSON(), nullable=False),
        sa.Column("reporters", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_safety_holds_component_id_components"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["stage_id"],
            ["stages.id"],
            name=op.f("fk_safety_holds_stage_id_stages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_holds")),
        sa.UniqueConstraint("stage_id", name=op.f("uq_safety_holds_stage_id")),
    )
    with op.batch_alter_table("safety_holds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_safety_holds_component_id"), ["component_id"], unique=False
        )

    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by", sa.String(length=64), nullable=True))

    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "include_report_text", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("include_report_text")

    with op.batch_alter_table("components", schema=None) as batch_op:
        batch_op.drop_column("held_by")

    with op.batch_alter_table("safety_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_safety_holds_component_id"))

    op.drop_table("safety_holds")
    with op.batch_alter_table("safety_report_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_safety_report_updates_report_id"))

    op.drop_table("safety_report_updates")
    with op.batch_alter_table("safety_report_components", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_safety_report_components_component_id"))

    op.drop_table("safety_report_components")
    with op.batch_alter_table("safety_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_safety_reports_status")
        batch_op.drop_index("ix_safety_reports_reporter")
        batch_op.drop_index("ix_safety_reports_model")

    op.drop_table("safety_reports")
    op.drop_table("safety_policies")
