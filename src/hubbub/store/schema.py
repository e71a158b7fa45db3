"""The tables, as SQLAlchemy Core metadata shared by both engines.

Times are integer milliseconds (``BigInteger``). JSON (``networks.config``,
``messages.meta``) is stored as text, encoded by us, so both engines keep the
exact bytes. Full-text search lives beside these tables and is engine-specific,
so it is created by the migration only (see ``migrations/versions/0001_initial.py``):

- SQLite: an FTS5 external-content table ``messages_fts`` (``content_rowid=pk``)
  kept in step by triggers;
- PostgreSQL: a generated ``messages.text_tsv`` column with a GIN index.

The migrations are the source of truth for the database; these tables are what
the queries are written against, and ``tests/store/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A 64-bit key that is also SQLite's rowid (only ``INTEGER PRIMARY KEY`` is).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    # core.names.fold(name); unique even across deleted users: a name is an identity.
    sa.Column("name_key", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # random public id, not the secret
    sa.Column("secret_hash", sa.Text, nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("user_agent", sa.Text, nullable=False, server_default=""),
    sa.Column("address", sa.Text, nullable=False, server_default=""),
    sa.Index(None, "user_id"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used", sa.BigInteger, nullable=True),
    sa.Index(None, "user_id"),
)

networks = sa.Table(
    "networks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # NULL for the shared ``local`` network; the owner for an IRC network.
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column("kind", sa.Text, nullable=False),  # 'local' | 'irc'
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Index(None, "user_id"),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "network_id",
        sa.Integer,
        sa.ForeignKey("networks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    # fold(name) for rooms and channels; ``dm:<low id>:<high id>`` for DMs.
    sa.Column("name_key", sa.Text, nullable=False),
    sa.Column("topic", sa.Text, nullable=False, server_default=""),
    sa.Column("visibility", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # The seq of the newest message; bumped by the writer under a row lock.
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("network_id", "name_key"),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column(
        "conversation_id",
        sa.Integer,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("joined_at", sa.BigInteger, nullable=False),
    sa.Column("read_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index(None, "user_id"),
)

messages = sa.Table(
    "messages",
    metadata,
    # Internal, stable key: SQLite's rowid, and the FTS5 content_rowid.
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),  # ULID, public
    sa.Column(
        "conversation_id",
        sa.Integer,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column(
        "sender_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("meta", sa.Text, nullable=True),  # JSON
    sa.Column("nonce", sa.Text, nullable=True),
    # The key a message has outside Hubbub (an IRC msgid or content hash), unique
    # per conversation so a replayed line is never stored twice (migration 0002).
    sa.Column("ext_key", sa.Text, nullable=True),
    # Also the history index: (conversation_id, seq) ranges.
    sa.UniqueConstraint("conversation_id", "seq"),
    # Idempotent sends; NULLs are distinct on both engines, so no nonce, no check.
    sa.UniqueConstraint("sender_id", "nonce"),
    sa.Index("ix_messages_conversation_id_ext_key", "conversation_id", "ext_key", unique=True),
)

# More external keys of one message (migration 0003): a message sent to IRC in
# several lines is keyed by its first part in ``messages.ext_key`` and by the
# others here, so a replay of any part leads to it. Unique per conversation.
message_ext_keys = sa.Table(
    "message_ext_keys",
    metadata,
    sa.Column(
        "conversation_id",
        sa.Integer,
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("ext_key", sa.Text, nullable=False),
    sa.Column(
        "message_id", sa.Text, sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False
    ),
    sa.PrimaryKeyConstraint("conversation_id", "ext_key"),
    sa.Index(None, "message_id"),
)
