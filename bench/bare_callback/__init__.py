"""A Django project for ``bench/bench_callback_endpoint.py``: the product's callback view and a
bare view beside it, served by the same gunicorn.

The bare view is the yardstick: it verifies the same HMAC signature with
:func:`django_scout.signing.verify`, parses the body and inserts one row into a plain table
through the ORM, nothing more.
"""
