"""Creating the PostgreSQL database itself, before Django can connect to it."""

import psycopg
from psycopg import sql


def connect_params(db: dict) -> dict:
    """Return psycopg connection arguments (without dbname) for a Django DATABASES entry."""
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "connect_timeout": 5,
    }


def database_create_if_missing(db: dict) -> bool:
    """Create the database a DATABASES entry names, if it does not exist; True if created.

    Raises psycopg.OperationalError when the server cannot be reached.
    """
    with psycopg.connect(dbname="postgres", autocommit=True, **connect_params(db)) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
        return True
