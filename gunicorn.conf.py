"""gunicorn's defaults for ``gunicorn wsgi:app`` (read from the working directory).

Granian is the default stack (wsgi.py, benchmarks/README.md); gunicorn stays supported. Under
gunicorn, threaded workers (gthread), chosen from benchmarks/run.py's side-by-side run:
- they keep connections alive (relying parties and proxies reuse them; the sync worker
  closes every connection);
- a sign-in's argon2id verify releases the GIL and at most ``CONCURRENT_VERIFIES`` run at
  once (idp.password), so a burst of sign-ins queues there while the same worker keeps
  answering the token endpoint;
- the sync worker measured slower on every case.
One worker per core; gunicorn's own ``WEB_CONCURRENCY`` overrides the count. Command-line flags override all of
this (``gunicorn -k sync …``).
"""

import os

worker_class = "gthread"
threads = 8
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
