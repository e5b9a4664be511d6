"""Profiles, their labels and messages, catalog files, reference data: what the service is about."""
