"""trainings: who asked a running training to stop, and when

Revision ID: 0002
Revises: 0001
Create Date: 2027-01-10

Several bot processes share one database; `!retrain cancel` typed in one that does not run the
trainer records the request here, and the process that runs it sees it on its next heartbeat.
Both columns are nullable: existing rows (no request) need no value.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trainings") as batch:
        batch.add_column(sa.Column("cancel_requested_by", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("trainings") as batch:
        batch.drop_column("cancel_requested_at")
        batch.drop_column("cancel_requested_by")
