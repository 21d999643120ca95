"""Hot queries of the chat compiled once: Django builds the SQL of a queryset anew each time it runs,
which costs more CPU than the query itself for the small fixed-shape queries of every chat batch
(docs/benchmarks.md, chat). A ``Prepared`` query is built by the ORM the first time for a given
number of ids (so the SQL is the backend's own, for PostgreSQL and SQLite alike), and afterwards
only executed with new ids and turned into model instances or rows as the ORM would.

Each list of ids is padded up to a power of two with values no row can match (``pads``), so that a
query has a handful of shapes, not one per batch size (one per pair of sizes for two lists). A
compiled shape keeps only its SQL and what turns rows into objects, not the ORM's query and compiler,
and is shared by the threads of the process: what a server keeps stays small, because every object
it keeps is walked by each full garbage collection (``core.gcpolicy``).

Only for querysets whose parameters are exactly the ids given, in order (checked when compiled;
anything else is run through the ORM every time).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators  # type: ignore[attr-defined]


def no_id(index: int) -> int:
    """A pad for a list of primary keys or ids: negative, so no row has it."""
    return -1 - index


def padded(values: Sequence[Any], pad: Callable[[int], Any]) -> list[Any]:
    """``values`` and then ``pad(0)``, ``pad(1)``, ... up to the next power of two in length."""
    size = 1 << (len(values) - 1).bit_length()
    return [*values, *(pad(index) for index in range(size - len(values)))]


class _Compiled:
    """One compiled shape: the SQL, and what turns its rows into objects (no connection of its own:
    it runs on the calling thread's)."""

    def __init__(self, queryset: QuerySet[Any], sql: str, as_objects: bool) -> None:
        self.sql = sql
        self.alias = queryset.db
        compiler = queryset.query.get_compiler(using=self.alias)
        compiler.as_sql()  # fills select, klass_info for the objects
        self.as_objects = as_objects
        fields = [column[0] for column in compiler.select[0 : compiler.col_count]]
        self.converters = list(compiler.get_converters(fields).items())
        if as_objects:
            klass_info = compiler.klass_info
            assert klass_info is not None
            self.model = klass_info["model"]
            select_fields = klass_info["select_fields"]
            self.start, self.end = select_fields[0], select_fields[-1] + 1
            self.init_list = [column[0].target.attname for column in compiler.select[self.start : self.end]]
            self.populators = get_related_populators(klass_info, compiler.select, self.alias)

    def run(self, params: list[Any]) -> list[Any]:
        connection = connections[self.alias]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows: list[Any] = cursor.fetchall()
        if self.converters:  # as SQLCompiler.apply_converters, with this thread's connection
            converted = []
            for row in map(list, rows):
                for position, (converters, expression) in self.converters:
                    value = row[position]
                    for converter in converters:
                        value = converter(value, expression, connection)
                    row[position] = value
                converted.append(row)
            rows = converted
        if not self.as_objects:
            return [tuple(row) for row in rows]
        objects = []
        for row in rows:
            obj = self.model.from_db(self.alias, self.init_list, row[self.start : self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects


class Prepared:
    """``Prepared(lambda ids, more: Model.objects.filter(a__in=ids, b__in=more), pads=(no_id, no_id))``,
    then ``prepared([1, 2], [3])``: the queryset's objects (or its rows for a values_list queryset),
    its SQL compiled once per process for each padded length of the lists (``pads``: one function per
    list, giving the i-th value no row can match)."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]], pads: Sequence[Callable[[int], Any]]) -> None:
        self.build = build
        self.pads = tuple(pads)
        # Shared by the threads: a shape compiled twice at once is only built twice (the GIL keeps the
        # dictionary whole); a compiled shape is never changed.
        self.cache: dict[tuple[int, ...], _Compiled] = {}

    def __call__(self, *lists: Sequence[Any]) -> list[Any]:
        if len(lists) != len(self.pads):
            raise TypeError(f"{len(self.pads)} lists expected, {len(lists)} given")
        if not all(lists):
            return list(self.build(*lists))  # nothing to look for: the ORM answers without a query
        lists = tuple(padded(values, pad) for values, pad in zip(lists, self.pads, strict=True))
        params = [value for values in lists for value in values]
        key = tuple(len(values) for values in lists)
        compiled = self.cache.get(key)
        if compiled is None:
            queryset = self.build(*lists)
            sql, compiled_params = queryset.query.get_compiler(using=queryset.db).as_sql()
            reusable = queryset._iterable_class in (ModelIterable, ValuesListIterable)
            if reusable and list(compiled_params) == params:  # not so with repeated ids, e.g.
                self.cache[key] = _Compiled(queryset, sql, queryset._iterable_class is ModelIterable)
            return list(queryset)
        return compiled.run(params)

    def compiled_shapes(self) -> int:
        """How many shapes this process has compiled (for tests)."""
        return len(self.cache)
