"""Candidates' personal data: their copy of it, erasure on request, retention periods and
the redaction of logs.

What the centre keeps and why is stated once, in the consent text
(``testing_center.accounts.consent``); ``services`` and ``retention`` do exactly that:
results and certificates of proctored exams, with the identity they belong to, stay
verifiable; practice answers, photos that are on no certificate, phone numbers and the
login are erased on request or when their period ends. This package may import the
accounts, attempts, certification and operations packages; nothing imports it but the
web, API, scheduler and ``create_app``.
"""
