"""Accounts: users and roles, candidate profiles, passwords and API tokens."""
