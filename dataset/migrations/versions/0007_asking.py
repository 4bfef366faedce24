"""guild_settings: how often the bot asks for a label

Revision ID: 0007_asking
Revises: 0006_limits
Create Date: 2027-05-01

- guild_settings.ask_every and ask_per_hour: a server's rate of asking for labels on uncertain
  verdicts (one verdict in `ask_every` at most, `ask_per_hour` times an hour per channel at
  most; 0: never). NULL, as for every row kept before this revision: the environment's.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_asking"
down_revision = "0006_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch:
        batch.add_column(sa.Column("ask_every", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ask_per_hour", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_column("ask_per_hour")
        batch.drop_column("ask_every")
