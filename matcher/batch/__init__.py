"""Batch problems: invitation lists, advisor assignment, their exports and the job runner."""
