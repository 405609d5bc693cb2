"""The example project's demo: fake Scout + this site + a real Celery worker, end to end."""
