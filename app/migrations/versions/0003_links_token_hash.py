"""links.token_hash: the SHA-256 digest of a link's management token (an expand-only migration).

Revision ID: 0003
Revises: 0002

Expand/contract (README "Rollouts"): nullable, no default, so Postgres writes the catalog and not
the table, and the previous release, which names every column it reads and writes, never sees
it (tests/app/test_migrations.py runs its statements against this schema). Links made before
this release, or by the previous release during a rollout, keep NULL: no management token can
delete them, the admin token still can. The digest alone is stored, never the token.
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # As in 0002: give up rather than queue every query on links behind the lock.
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE links ADD COLUMN token_hash bytea")
    op.execute("SET LOCAL lock_timeout = DEFAULT")


def downgrade() -> None:
    # The contract direction: every link's owner loses the means to delete it (the admin keeps it).
    op.execute("SET LOCAL lock_timeout = '5s'")
    op.execute("ALTER TABLE links DROP COLUMN token_hash")
    op.execute("SET LOCAL lock_timeout = DEFAULT")
