"""image_refs: who posted each image (the author of the message that carried it)

Revision ID: 0005_posters
Revises: 0004
Create Date: 2027-04-01

- image_refs.poster_id: the author of the message that carried the image in that server, so
  `!forget` covers the pictures a person posted, whoever labelled them. Rows kept before this
  revision get NULL: their author was never recorded (`posted_by` is who gave the image, which
  may be someone else), and a guess would let `!forget` delete another person's image.
- Indexes on image_refs(poster_id), for `!forget` in every server, and on (guild_id,
  message_id), for a deleted message to find the images it carried.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_posters"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_refs") as batch:
        batch.add_column(sa.Column("poster_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_image_refs_poster_id", "image_refs", ["poster_id"])
    op.create_index("ix_image_refs_guild_id_message_id", "image_refs", ["guild_id", "message_id"])


def downgrade() -> None:
    op.drop_index("ix_image_refs_guild_id_message_id", table_name="image_refs")
    op.drop_index("ix_image_refs_poster_id", table_name="image_refs")
    with op.batch_alter_table("image_refs") as batch:
        batch.drop_column("poster_id")
