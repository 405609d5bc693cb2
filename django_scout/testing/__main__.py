"""``python -m django_scout.testing``: run the fake Scout server until Ctrl-C or SIGTERM."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
