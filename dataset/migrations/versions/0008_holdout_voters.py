"""who vouches for a held-out image, and a server's own count of voters

Revision ID: 0008_holdout_voters
Revises: 0007_asking
Create Date: 2027-06-01

- server_images.label_voters: the members whose vote in that server gives the image its label
  (0: no label); server_images.moderated: whether a moderator's vote does. A held-out image
  judges a server's models only with enough of them (or a moderator's). Filled here from the
  votes.
- guild_settings.holdout_min_voters: a server's own count (NULL, as for every row kept before
  this revision: the environment's HOLDOUT_MIN_VOTERS).

The label rule is spelled out here as `dataset.labels` has it (a revision is frozen once
released).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0008_holdout_voters"
down_revision = "0007_asking"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server_images") as batch:
        batch.add_column(
            sa.Column("label_voters", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("moderated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("guild_settings") as batch:
        batch.add_column(sa.Column("holdout_min_voters", sa.Integer(), nullable=True))
    _fill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_column("holdout_min_voters")
    with op.batch_alter_table("server_images") as batch:
        batch.drop_column("moderated")
        batch.drop_column("label_voters")


def _fill(connection: sa.Connection) -> None:
    """Each server_images row's label voters, from the votes (rows without votes keep 0)."""
    votes = sa.table(
        "votes",
        sa.column("guild_id"),
        sa.column("image_sha256"),
        sa.column("label"),
        sa.column("moderator", sa.Boolean()),
    )
    cast: dict[tuple[int, str], list[tuple[str, bool]]] = defaultdict(list)
    for guild, sha256, label, moderator in connection.execute(
        sa.select(votes.c.guild_id, votes.c.image_sha256, votes.c.label, votes.c.moderator)
    ):
        cast[int(guild), sha256].append((label, bool(moderator)))
    server_images = sa.table(
        "server_images",
        sa.column("guild_id"),
        sa.column("image_sha256"),
        sa.column("label_voters", sa.Integer()),
        sa.column("moderated", sa.Boolean()),
    )
    for (guild, sha256), ballots in cast.items():
        everyone = Counter(label for label, _ in ballots)
        moderators = Counter(label for label, moderator in ballots if moderator)
        label = _majority(moderators or everyone)
        if label is None:
            continue
        connection.execute(
            sa.update(server_images)
            .where(server_images.c.guild_id == guild, server_images.c.image_sha256 == sha256)
            .values(label_voters=everyone[label], moderated=moderators[label] > 0)
        )


def _majority(counts: Counter[str]) -> str | None:
    ranked = counts.most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]
