"""How a server process treats Python's cyclic garbage collector (``nethospital serve``, each worker).

A full (generation 2) collection walks every container object the process holds and stops the event
loop for its whole length: every websocket and request of the process waits. A freshly started server
holds ~170,000 such objects that live as long as the process (modules, classes, functions, Django's
models, URL patterns, translation catalogues, the ICD-10 and GS1 tables); on the 2-CPU machine of
docs/benchmarks.md a full collection of them took 26-153 ms, several times a minute under a busy chat,
because Python starts one whenever the long-lived objects have grown by a quarter.

So once the application is built and warmed up (URL resolvers, translation catalogues loaded, what the
first requests would otherwise build), ``settle`` collects once and then *freezes* what is left
(``gc.freeze()``: moved to a permanent generation the collector no longer walks). Later collections walk
only what the process made since: the sockets, requests and caches of its traffic. Frozen objects are
still freed by reference counting when nothing refers to them; what the freeze gives up is finding
reference cycles among start-up objects, which live for the whole process anyway.

``NETHOSPITAL_GC_FREEZE`` (default on) turns the freeze off; ``NETHOSPITAL_GC_THRESHOLD`` (three whole
numbers, ``gen0,gen1,gen2``, as ``gc.set_threshold``) changes the collector's thresholds, empty keeps
Python's. Both are read from settings (docs/settings.md); the figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import contextvars
import gc
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    frozen: int  # objects moved to the permanent generation (0: not frozen)
    threshold: tuple[int, int, int]


def parse_threshold(value: str) -> tuple[int, int, int] | None:
    """``"gen0,gen1,gen2"`` → a threshold; empty → None (Python's own). ImproperlyConfigured names what is wrong."""
    value = value.strip()
    if not value:
        return None
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != 3 or not all(part.isascii() and part.isdigit() for part in parts):
        raise ImproperlyConfigured(
            f"NETHOSPITAL_GC_THRESHOLD must be three whole numbers 'gen0,gen1,gen2', not {value!r}"
        )
    gen0, gen1, gen2 = (int(part) for part in parts)
    if gen0 < 1:
        # gc.set_threshold(0, ...) disables collection altogether: not something a threshold should do.
        raise ImproperlyConfigured("NETHOSPITAL_GC_THRESHOLD: the first number (gen0) must be at least 1")
    return gen0, gen1, gen2


def warm_up() -> None:
    """Build now what the first requests of a process would otherwise build (and leave for the
    collector to walk): the URL resolvers of every app and the translation catalogue of each language."""
    from django.urls import get_resolver
    from django.utils import translation

    resolver = get_resolver()
    resolver.reverse_dict  # noqa: B018  (the property populates the resolver tree and its reverse maps)
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Net Hospital")
            resolver.reverse_dict  # noqa: B018  (reverse maps are per language)


def settle() -> Settled:
    """Warm up, collect once, freeze the survivors, set the thresholds (see the module's docstring).
    Called once in each server process, after the application is built and before it serves."""
    threshold = parse_threshold(str(getattr(settings, "NETHOSPITAL_GC_THRESHOLD", "")))
    frozen = 0
    if getattr(settings, "NETHOSPITAL_GC_FREEZE", True):
        # In a copy of the context: the resolvers and translations keep per-context state in asgiref
        # Locals (context variables); set in this one, every task of the server would inherit ~50 of
        # them, and asgiref re-homes each one on every hop between the event loop and a thread.
        contextvars.copy_context().run(warm_up)
        gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
    if threshold is not None:
        gc.set_threshold(*threshold)
    gen0, gen1, gen2 = gc.get_threshold()
    logger.info("garbage collector: %d start-up objects frozen, thresholds %d/%d/%d", frozen, gen0, gen1, gen2)
    return Settled(frozen=frozen, threshold=(gen0, gen1, gen2))
