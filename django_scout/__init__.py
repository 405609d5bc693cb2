"""django-scout: drive the Scout AI platform from Django."""

__version__ = "0.1.0"
