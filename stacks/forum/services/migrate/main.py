"""The forum's migration job: waits for Postgres to listen, creates the schema, exits 0.

Idempotent (IF NOT EXISTS), so it can run on every boot. MIGRATE_FAIL=1 makes it fail on purpose
after MIGRATE_FAIL_AFTER_S seconds, to show a failing migration failing the boot.
"""

import os
import sys
import time

import psycopg2

DATABASE_URL = os.environ["DATABASE_URL"]
WAIT_S = 120
SCHEMA = [
    """CREATE TABLE IF NOT EXISTS posts (
           id serial PRIMARY KEY, author text NOT NULL, title text NOT NULL, body text NOT NULL DEFAULT '',
           created_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS events (
           id serial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS events_kind ON events (kind)",
]


def connect():
    """Connect, retrying while the database starts (it has no healthcheck to wait for)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return psycopg2.connect(DATABASE_URL, connect_timeout=3)
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"migrate: database unreachable for {WAIT_S} s: {exc}")
            time.sleep(0.3)


def main() -> None:
    if os.environ.get("MIGRATE_FAIL") == "1":
        time.sleep(float(os.environ.get("MIGRATE_FAIL_AFTER_S", "0")))
        sys.exit("migrate: failing on purpose (MIGRATE_FAIL=1)")
    with connect() as conn, conn.cursor() as cur:
        for statement in SCHEMA:
            cur.execute(statement)
    print("migrate: schema up to date", flush=True)


if __name__ == "__main__":
    main()
