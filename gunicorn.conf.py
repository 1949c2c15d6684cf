"""gunicorn's defaults for ``gunicorn wsgi:app`` (read from the working directory).

Threaded workers (gthread), chosen from benchmarks/run.py's side-by-side run of the stacks:
- they keep connections alive (relying parties and proxies reuse them; the sync worker
  closes every connection);
- a sign-in's argon2id verify releases the GIL and at most ``CONCURRENT_VERIFIES`` run at
  once (idp.login.password), so a burst of sign-ins queues there while the same worker keeps
  answering the token endpoint;
- no dependency beyond gunicorn. Granian measured close (ahead on sign-ins and JWKS, behind
  on refresh) and stays an option: ``granian --interface wsgi wsgi:app``.
One worker per core; gunicorn's own ``WEB_CONCURRENCY`` overrides the count. Command-line flags override all of
this (``gunicorn -k sync …``).
"""

import os

worker_class = "gthread"
threads = 8
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)


def post_fork(server, worker):
    """One malloc arena per worker. glibc gives each thread an arena of its own, and each arena
    keeps the 19 MiB buffer of the last argon2id verify it ran. With 8 threads a worker peaked
    at 289 MiB; with one arena it peaks at 173 MiB (benchmarks/run.py, sign-ins and client
    credentials), and throughput does not change: the GIL already serialises the threads' Python
    work."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass
