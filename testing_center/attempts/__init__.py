"""Attempts: one candidate's sitting of one exam, its frozen form and saved responses."""
