"""Scheduler: pure filters and weighers over host snapshots, and the claim in the database."""
