"""links.last_clicked_at: when a link was last clicked (an expand-only migration).

Revision ID: 0002
Revises: 0001

Expand/contract (README "Rollouts"): during a rollout the previous release's replicas run
against this schema until the last of them is stopped, so this step only adds what the
previous release cannot see. The column is nullable with no default: Postgres records it in
the catalog without rewriting the table, and every statement of the previous release names its
columns (INSERT (code, url), SELECT id, code, url, clicks, created_at), so it keeps working
unchanged (tests/app/test_migrations.py runs those statements against this schema). The
release that ships this migration also writes the column (crud.record_clicks); links clicked
before it stay NULL ("not clicked since the column exists"). Dropping or renaming a column is
the contract step: only once no running release reads it, in a later migration.
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # ADD COLUMN takes an ACCESS EXCLUSIVE lock, for a moment only; but while it waits for one
    # (behind a long transaction, e.g. the stats query) every later query on links queues
    # behind it. Give up after a few seconds instead: the job fails, the rollout stops before
    # any new replica starts, and a rerun tries again.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE links ADD COLUMN last_clicked_at timestamptz")
    op.execute("SET LOCAL lock_timeout = DEFAULT")  # one transaction for every migration: do not leak


def downgrade() -> None:
    # The contract direction: only when no running release reads the column any more.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE links DROP COLUMN last_clicked_at")
    op.execute("SET LOCAL lock_timeout = DEFAULT")
