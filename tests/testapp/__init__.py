"""A test-only app that records every django-scout signal as a row (visible across processes)."""
