"""FAIR data: findable flag on access-tiered rows, recomputations, metadata policies,
archive records

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIERED = ("campaigns", "requests", "results", "files")


def upgrade() -> None:
    for table in TIERED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("findable", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    op.create_table(
        "recomputations",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("original_result_id", sa.Uuid(), nullable=False),
        sa.Column("original_request_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["original_request_id"],
            ["requests.id"],
            name=op.f("fk_recomputations_original_request_id_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["original_result_id"],
            ["results.id"],
            name=op.f("fk_recomputations_original_result_id_results"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_recomputations_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_recomputations")),
    )
    with op.batch_alter_table("recomputations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recomputations_original_result_id"), ["original_result_id"], unique=False
        )
    op.create_table(
        "metadata_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("quantity", sa.String(length=100), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("strictness", sa.String(length=10), nullable=False),
        sa.Column("data_types", JSON, nullable=False),
        sa.Column("required", JSON, nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metadata_policies")),
        sa.UniqueConstraint(
            "quantity", "method", name=op.f("uq_metadata_policies_quantity_method")
        ),
    )
    op.create_table(
        "archive_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest", JSON, nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_records")),
        sa.UniqueConstraint(
            "campaign_id",
            "scope",
            "version",
            name=op.f("uq_archive_records_campaign_id_scope_version"),
        ),
    )
    with op.batch_alter_table("archive_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_records_campaign_id"), ["campaign_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("archive_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_records_campaign_id"))
    op.drop_table("archive_records")
    op.drop_table("metadata_policies")
    with op.batch_alter_table("recomputations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recomputations_original_result_id"))
    op.drop_table("recomputations")
    for table in TIERED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("findable")
