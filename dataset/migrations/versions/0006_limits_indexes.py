"""what each server has of each image, and the indexes of the limits

Revision ID: 0006_limits
Revises: 0005_posters
Create Date: 2027-04-01

- server_images: one row per (server, image) the server holds or voted on: held, the image's
  size, its split, its label by that server's votes (null: none or a tie), whether the votes
  conflict, the votes per label and when the first was cast. The store keeps it with the votes
  and references (`dataset.queries.refresh_server_images`), so `!dataset` and the quota read
  rows of what a server has instead of every vote. Filled here from the votes and references.
- image_refs (guild_id, created_at) and (posted_by, created_at): a day's additions, for the
  daily quota; votes (guild_id, user_id): a server's top contributors.

The label rule and the split are spelled out here as `dataset.labels` has them (a revision is
frozen once released).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006_limits"
down_revision = "0005_posters"
branch_labels = None
depends_on = None

HOLDOUT_PERCENT = 20
CHUNK = 5000

INDEXES = (
    (
        "ix_server_images_guild_id_label_holdout_vote_count",
        "server_images",
        ["guild_id", "label", "holdout", "vote_count"],
    ),
    (
        "ix_server_images_guild_id_first_vote_at_label",
        "server_images",
        ["guild_id", "first_vote_at", "label"],
    ),
    (
        "ix_server_images_guild_id_conflict_vote_count_image_sha256",
        "server_images",
        ["guild_id", "conflict", "vote_count", "image_sha256"],
    ),
    ("ix_server_images_guild_id_held_size", "server_images", ["guild_id", "held", "size"]),
    ("ix_image_refs_guild_id_created_at", "image_refs", ["guild_id", "created_at"]),
    ("ix_image_refs_posted_by_created_at", "image_refs", ["posted_by", "created_at"]),
    ("ix_votes_guild_id_user_id", "votes", ["guild_id", "user_id"]),
)


def upgrade() -> None:
    server_images = op.create_table(
        "server_images",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("holdout", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=True),
        sa.Column("conflict", sa.Boolean(), nullable=False),
        sa.Column("votes", sa.JSON(), nullable=True),
        sa.Column("vote_count", sa.Integer(), nullable=False),
        sa.Column("first_vote_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_sha256"],
            ["images.sha256"],
            name="fk_server_images_image_sha256_images",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("guild_id", "image_sha256", name="pk_server_images"),
    )
    rows = _server_images(op.get_bind())
    for start in range(0, len(rows), CHUNK):
        op.bulk_insert(server_images, rows[start : start + CHUNK])
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_table("server_images")


def _server_images(connection: sa.Connection) -> list[dict[str, Any]]:
    """A row for every (server, image) held or voted on, from the references and the votes."""
    sizes = dict(connection.execute(sa.text("SELECT sha256, size FROM images")).all())
    refs = connection.execute(sa.text("SELECT guild_id, image_sha256 FROM image_refs"))
    held = {(int(guild), sha256) for guild, sha256 in refs}
    votes = sa.table(
        "votes",
        sa.column("guild_id"),
        sa.column("image_sha256"),
        sa.column("label"),
        sa.column("moderator", sa.Boolean()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    cast: dict[tuple[int, str], list[tuple[str, bool, Any]]] = defaultdict(list)
    for guild, sha256, label, moderator, created in connection.execute(
        sa.select(votes.c.guild_id, votes.c.image_sha256, votes.c.label).add_columns(
            votes.c.moderator, votes.c.created_at
        )
    ):
        cast[int(guild), sha256].append((label, bool(moderator), created))
    rows = []
    for guild, sha256 in sorted(held | set(cast)):
        ballots = cast.get((guild, sha256), [])
        everyone = Counter(label for label, _, _ in ballots)
        moderators = Counter(label for label, moderator, _ in ballots if moderator)
        label = _majority(moderators or everyone)
        rows.append(
            {
                "guild_id": guild,
                "image_sha256": sha256,
                "held": (guild, sha256) in held,
                "size": sizes.get(sha256, 0),
                "holdout": int(sha256[:8], 16) % 100 < HOLDOUT_PERCENT,
                "label": label,
                "conflict": label is None and bool(ballots),
                "votes": dict(everyone) or None,
                "vote_count": len(ballots),
                "first_vote_at": min((created for *_, created in ballots), default=None),
            }
        )
    return rows


def _majority(counts: Counter[str]) -> str | None:
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
