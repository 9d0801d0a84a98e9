"""Psychometrics on live attempts: item analysis, calibration, stored item parameters and
scoring corrections (re-keyed, credited or dropped items)."""
