"""Registry of lines and call history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from dialtone.server.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone_number", sa.String(16), nullable=False, unique=True),
        sa.Column("client_name", sa.String(256), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("call_sid", sa.String(34), primary_key=True),
        sa.Column("parent_call_sid", sa.String(34), nullable=True),
        sa.Column("line_number", sa.String(16), nullable=True),
        sa.Column("from", sa.String(300), nullable=False),
        sa.Column("to", sa.String(300), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=True),
        sa.Column("last_sequence_number", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_calls_parent_call_sid", "calls", ["parent_call_sid"])
    op.create_index("ix_calls_line_number", "calls", ["line_number"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_sid", sa.String(34), nullable=False),
        sa.Column("event_key", sa.String(40), nullable=False),
        sa.Column("sequence_number", sa.Integer(), nullable=True),
        sa.Column("call_status", sa.String(20), nullable=False),
        sa.Column("call_duration", sa.Integer(), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("call_sid", "event_key", name="uq_call_events_call_sid_key"),
    )
    op.create_index("ix_call_events_call_sid", "call_events", ["call_sid"])


def downgrade() -> None:
    op.drop_table("call_events")
    op.drop_table("calls")
    op.drop_table("lines")
