"""Certificates in the app: issue on result release, revoke, re-issue, verify, share."""
