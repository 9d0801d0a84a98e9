"""Exam templates (blueprints) and the assembly of one candidate's form from the bank."""
