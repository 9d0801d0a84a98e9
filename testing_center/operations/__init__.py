"""Test-centre operations: centres, sessions, bookings, check-in, proctoring, scheduler."""
