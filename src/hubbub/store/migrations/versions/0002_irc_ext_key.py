"""IRC messages: an ``ext_key`` per message, unique per conversation.

An IRC line stored as a message carries the key it has on IRC (its msgid, or
a hash of time, nick, kind and text), so a CHATHISTORY replay or a live line
racing it is never stored twice, even by two processes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("ext_key", sa.Text, nullable=True))
    # NULLs are distinct on both engines: messages without a key are not checked.
    op.create_index(
        "ix_messages_conversation_id_ext_key",
        "messages",
        ["conversation_id", "ext_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_id_ext_key", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("ext_key")
