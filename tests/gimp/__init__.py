"""Helpers for the GIMP 3 end-to-end test (``tests/test_gimp_e2e.py``)."""
