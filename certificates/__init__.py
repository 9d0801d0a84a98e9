"""Certificates: documents, numbers, signatures and verification (see README.md)."""
