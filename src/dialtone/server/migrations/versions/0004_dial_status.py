"""How a call's <Dial> ended (its action's DialCallStatus and DialCallDuration): the parent
leg's own status cannot tell an answered incoming call from a declined or missed one.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("dial_status", sa.String(20), nullable=True))
    op.add_column("calls", sa.Column("dial_duration", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("dial_duration")
        batch.drop_column("dial_status")
