"""A Django project for ``bench/bench_live_viewers.py``: the live relay and a bare relay beside it.

One uvicorn worker serves it per configuration: the product's relay
(``scout/live/interactions/<id>/``) with ``LIVE_NOTIFY`` set from ``BENCH_LIVE_NOTIFY``, or the
bare relay (``bare/interactions/<id>/``), the yardstick: a hand-written async view that reads
its row every ``BENCH_BARE_POLL`` seconds on the event loop's thread pool, closing its
connection after each read, as a careful host project would write it without django-scout.
"""
