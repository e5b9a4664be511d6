"""Judged data sets and ranking metrics."""
