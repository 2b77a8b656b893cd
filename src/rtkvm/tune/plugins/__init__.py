"""Tuning plugins: one small module per kind of setting (mechanism; the profile is the data)."""
