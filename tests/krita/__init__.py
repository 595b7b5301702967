"""Helpers for the Krita plug-in tests: an in-memory editor and kritarunner scripts."""
