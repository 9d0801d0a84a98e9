"""Scoring: pure functions from graded responses to scores and pass decisions.

No Flask, no database session, no clock: everything comes in as arguments.
"""
