"""The WSGI entry point for production.

    granian --interface wsgi --workers <cores> --blocking-threads 8 wsgi:app   (the default)
    gunicorn wsgi:app                                   (gunicorn.conf.py: gthread workers)

Granian is the default stack: in benchmarks/run.py's side-by-side run it serves the token
endpoint about twice as fast as gunicorn's threaded worker (benchmarks/README.md).
"""


def _one_malloc_arena() -> None:
    """One malloc arena per worker process (imported in each worker, by either server). glibc
    gives each thread an arena of its own, and each arena keeps the 19 MiB buffer of the last
    argon2id verify it ran: with 8 threads a worker peaked at 289 MiB, with one arena at
    173 MiB (benchmarks/run.py), and throughput does not change (the GIL already serialises
    the threads' Python work)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_one_malloc_arena()

from idp import create_app  # noqa: E402

app = create_app()


def _freeze_the_heap() -> None:
    """Move what start-up built (modules, the app, its caches' scaffolding) out of the
    garbage collector's sight: a full collection then walks only what requests created since.
    Without it each full collection walked ~160,000 objects, 50-130 ms during which the
    worker answered nothing: a refresh grant's p99 at 70% load was 13.5 ms, set by those
    stalls (benchmarks/README.md)."""
    import gc

    gc.collect()
    gc.freeze()


_freeze_the_heap()
