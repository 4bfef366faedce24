"""the full trainings' queue: a "queued" status, one waiting training per scope, slots

Revision ID: 0004
Revises: 0003
Create Date: 2027-03-01

- trainings.status may be "queued": a full training waiting for one of the cluster's
  MAX_TRAININGS slots (`dataset.trainings`), at most one per scope.
- trainings.slot: the slot a running full training holds; a unique index over running rows
  admits one training per slot, so two processes promoting at once cannot overrun the limit.

The downgrade cancels the queued trainings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RUNNING_WHERE = "status = 'running'"
QUEUED_WHERE = "status = 'queued'"
STATUSES = "'running', 'published', 'refused', 'failed', 'cancelled', 'interrupted'"


def upgrade() -> None:
    with op.batch_alter_table("trainings") as batch:
        batch.drop_constraint(op.f("ck_trainings_status"), type_="check")
        batch.create_check_constraint(
            op.f("ck_trainings_status"), f"status IN ({STATUSES}, 'queued')"
        )
        batch.add_column(sa.Column("slot", sa.Integer(), nullable=True))
    _partial_index("uq_trainings_one_queued", "scope", QUEUED_WHERE)
    _partial_index("uq_trainings_slot", "slot", RUNNING_WHERE)


def downgrade() -> None:
    op.drop_index("uq_trainings_slot", table_name="trainings")
    op.drop_index("uq_trainings_one_queued", table_name="trainings")
    op.execute(
        "UPDATE trainings SET status = 'cancelled', finished_at = heartbeat_at "
        "WHERE status = 'queued'"
    )
    with op.batch_alter_table("trainings") as batch:
        batch.drop_column("slot")
        batch.drop_constraint(op.f("ck_trainings_status"), type_="check")
        batch.create_check_constraint(op.f("ck_trainings_status"), f"status IN ({STATUSES})")


def _partial_index(name: str, column: str, where: str) -> None:
    op.create_index(
        name,
        "trainings",
        [column],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
