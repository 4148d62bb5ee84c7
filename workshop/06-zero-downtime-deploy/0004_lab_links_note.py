"""links.note: the lab's release adds a column (an expand-only migration, as README "Rollouts" asks).

Revision ID: 0004
Revises: 0003

Nullable, no default: Postgres writes the catalog, not the table, and the running release, which
names every column it reads and writes, never sees it. workshop/06-zero-downtime-deploy/run builds
it into a release image; the lab drops it again at the end (the contract step).
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE links ADD COLUMN note text")
    op.execute("SET LOCAL lock_timeout = DEFAULT")


def downgrade() -> None:
    op.execute("ALTER TABLE links DROP COLUMN note")
