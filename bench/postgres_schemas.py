"""A throwaway schema per bench run on a PostgreSQL server the bench is given."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode


def postgres_schema(base: str) -> tuple[str, str]:
    """A fresh schema and a URL whose search_path points at it."""
    from sqlalchemy import create_engine, text

    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}{urlencode({'options': f'-csearch_path={schema}'})}"


def drop_schema(base: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
