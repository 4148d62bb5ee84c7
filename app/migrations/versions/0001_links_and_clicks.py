"""Links and their clicks.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE links (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            code text NOT NULL UNIQUE,
            url text NOT NULL,
            clicks bigint NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One row per click: the top-links window query needs the times, not just a counter.
    op.execute(
        """
        CREATE TABLE clicks (
            link_id bigint NOT NULL REFERENCES links (id) ON DELETE CASCADE,
            clicked_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX clicks_clicked_at_idx ON clicks (clicked_at)")
    op.execute("CREATE INDEX clicks_link_id_idx ON clicks (link_id)")


def downgrade() -> None:
    op.execute("DROP TABLE clicks")
    op.execute("DROP TABLE links")
