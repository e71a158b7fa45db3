"""IRC messages: more external keys per message (``message_ext_keys``).

A message the user sends through Hubbub that is longer than one IRC line goes
out as several lines, and with echo-message each part comes back with a msgid
of its own. The stored message (one message, the whole text) keeps the key of
its first part in ``messages.ext_key``; the keys of the other parts go here,
so a CHATHISTORY replay of any part leads to that one message and is not
stored again. Unique per conversation, like ``messages.ext_key``; a row goes
with its message (and its conversation).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_ext_keys",
        sa.Column(
            "conversation_id",
            sa.Integer,
            sa.ForeignKey(
                "conversations.id",
                ondelete="CASCADE",
                name="fk_message_ext_keys_conversation_id_conversations",
            ),
            nullable=False,
        ),
        sa.Column("ext_key", sa.Text, nullable=False),
        sa.Column(
            "message_id",
            sa.Text,
            sa.ForeignKey(
                "messages.id", ondelete="CASCADE", name="fk_message_ext_keys_message_id_messages"
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("conversation_id", "ext_key", name="pk_message_ext_keys"),
    )
    op.create_index("ix_message_ext_keys_message_id", "message_ext_keys", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_message_ext_keys_message_id", table_name="message_ext_keys")
    op.drop_table("message_ext_keys")
