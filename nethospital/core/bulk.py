"""Rows inserted with one fixed ``INSERT ... VALUES (...), (...)`` whose SQL is built once per model and
number of rows. Django 5.2 inserts several rows into PostgreSQL through ``UNNEST`` of arrays, which
psycopg dumps in Python: for the handful of rows of a hot write (a chat batch's messages and their audit
entries) that costs more than the statement (docs/benchmarks.md, chat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

_insert_sql: dict[tuple[str, type[Model], int], tuple[str, list[Field[Any, Any]], Field[Any, Any] | None]] = {}


def insert(objs: Sequence[Model]) -> None:
    """``bulk_create`` of new rows of one model in one statement (see the module's docstring), setting
    their primary keys where the database returns them. Sends no signals, as ``bulk_create``."""
    if not objs:
        return
    model = type(objs[0])
    alias = router.db_for_write(model)
    connection = connections[alias]
    key = (alias, model, len(objs))
    if key not in _insert_sql:
        meta = model._meta
        fields = [field for field in meta.local_concrete_fields if not getattr(field, "db_returning", False)]
        returning = meta.pk if meta.pk is not None and getattr(meta.pk, "db_returning", False) else None
        quote = connection.ops.quote_name
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        columns = ", ".join(quote(field.column) for field in fields)
        values = ", ".join([row] * len(objs))
        sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608 - names from the model
        if returning is not None:
            if not connection.features.can_return_rows_from_bulk_insert:
                bulk_create_instead: Any = model._default_manager.using(alias)
                bulk_create_instead.bulk_create(objs)
                return
            sql += f" RETURNING {quote(returning.column)}"
        _insert_sql[key] = (sql, fields, returning)
    sql, fields, returning = _insert_sql[key]
    params: list[Any] = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        params.extend(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = cursor.fetchall() if returning is not None else []
    for index, obj in enumerate(objs):
        if returning is not None:
            setattr(obj, returning.attname, keys[index][0])
        obj._state.adding = False
        obj._state.db = alias
