"""per server: votes and image references per server, server settings, scoped trainings

Revision ID: 0003
Revises: 0002
Create Date: 2027-02-01

- votes: one per (image, server, person); `guild_id` is NOT NULL, 0 meaning "no server" (what was
  NULL: imports). A moderator's vote stays a moderator's vote in the server it was cast in.
- image_refs: which servers hold an image, filled from the votes (one per server and image, given
  by the first voter there: the bot kept an image only with its giver's vote) and from the
  server an image was first posted in.
- guild_settings: `sharing`, `ood_policy`, `uncertain_band`, `channels` (null: the default).
- trainings: `scope` (the server whose model it trains, 0: the default model; existing rows are
  0) and `kind`; at most one running training per scope.

The downgrade keeps one vote per (image, person), the latest, and one running training.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ONE_RUNNING_WHERE = "status = 'running'"


def upgrade() -> None:
    op.execute("UPDATE votes SET guild_id = 0 WHERE guild_id IS NULL")
    with op.batch_alter_table("votes") as batch:
        batch.alter_column("guild_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_constraint("uq_votes_image_sha256_user_id", type_="unique")
        batch.create_unique_constraint(
            "uq_votes_image_sha256_guild_id_user_id", ["image_sha256", "guild_id", "user_id"]
        )

    op.create_table(
        "image_refs",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("posted_by", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_sha256"],
            ["images.sha256"],
            name="fk_image_refs_image_sha256_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("guild_id", "image_sha256", name="pk_image_refs"),
    )
    op.create_index("ix_image_refs_image_sha256", "image_refs", ["image_sha256"])
    # One reference per (server, image) voted on, by its first voter there; the channel and
    # message are the image's own where it was first posted in that server.
    op.execute(
        """
        INSERT INTO image_refs
            (guild_id, image_sha256, posted_by, channel_id, message_id, created_at)
        SELECT v.guild_id, v.image_sha256, v.user_id,
               CASE WHEN i.guild_id = v.guild_id THEN i.channel_id END,
               CASE WHEN i.guild_id = v.guild_id THEN i.message_id END,
               v.created_at
        FROM votes v JOIN images i ON i.sha256 = v.image_sha256
        WHERE v.id = (
            SELECT MIN(w.id) FROM votes w
            WHERE w.image_sha256 = v.image_sha256 AND w.guild_id = v.guild_id
              AND w.created_at = (
                  SELECT MIN(x.created_at) FROM votes x
                  WHERE x.image_sha256 = v.image_sha256 AND x.guild_id = v.guild_id
              )
        )
        """
    )
    op.execute(
        """
        INSERT INTO image_refs
            (guild_id, image_sha256, posted_by, channel_id, message_id, created_at)
        SELECT COALESCE(i.guild_id, 0), i.sha256, NULL, i.channel_id, i.message_id, i.first_seen
        FROM images i
        WHERE NOT EXISTS (
            SELECT 1 FROM image_refs r
            WHERE r.image_sha256 = i.sha256 AND r.guild_id = COALESCE(i.guild_id, 0)
        )
        """
    )

    with op.batch_alter_table("guild_settings") as batch:
        batch.add_column(
            sa.Column("sharing", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("ood_policy", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("uncertain_band", sa.Float(), nullable=True))
        batch.add_column(sa.Column("channels", sa.JSON(), nullable=True))
        batch.create_check_constraint(
            "ck_guild_settings_ood_policy", "ood_policy IN ('refuse', 'warn', 'off')"
        )

    op.drop_index("uq_trainings_one_running", table_name="trainings")
    with op.batch_alter_table("trainings") as batch:
        batch.add_column(
            sa.Column("scope", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("kind", sa.String(length=8), server_default="full", nullable=False)
        )
        batch.create_check_constraint("ck_trainings_kind", "kind IN ('head', 'full')")
    _one_running_index("scope")


def downgrade() -> None:
    op.drop_index("uq_trainings_one_running", table_name="trainings")
    op.execute(
        "UPDATE trainings SET status = 'interrupted' WHERE status = 'running' AND id <> "
        "(SELECT MIN(id) FROM trainings WHERE status = 'running')"
    )
    with op.batch_alter_table("trainings") as batch:
        batch.drop_constraint("ck_trainings_kind", type_="check")
        batch.drop_column("kind")
        batch.drop_column("scope")
    _one_running_index("status")

    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_constraint("ck_guild_settings_ood_policy", type_="check")
        batch.drop_column("channels")
        batch.drop_column("uncertain_band")
        batch.drop_column("ood_policy")
        batch.drop_column("sharing")

    op.drop_index("ix_image_refs_image_sha256", table_name="image_refs")
    op.drop_table("image_refs")

    # One vote per (image, person) again: the one changed last.
    op.execute(
        """
        DELETE FROM votes WHERE id <> (
            SELECT w.id FROM votes w
            WHERE w.image_sha256 = votes.image_sha256 AND w.user_id = votes.user_id
            ORDER BY w.updated_at DESC, w.id DESC LIMIT 1
        )
        """
    )
    with op.batch_alter_table("votes") as batch:
        batch.drop_constraint("uq_votes_image_sha256_guild_id_user_id", type_="unique")
        batch.create_unique_constraint("uq_votes_image_sha256_user_id", ["image_sha256", "user_id"])
        batch.alter_column("guild_id", existing_type=sa.BigInteger(), nullable=True)
    op.execute("UPDATE votes SET guild_id = NULL WHERE guild_id = 0")


def _one_running_index(column: str) -> None:
    op.create_index(
        "uq_trainings_one_running",
        "trainings",
        [column],
        unique=True,
        sqlite_where=sa.text(ONE_RUNNING_WHERE),
        postgresql_where=sa.text(ONE_RUNNING_WHERE),
    )
