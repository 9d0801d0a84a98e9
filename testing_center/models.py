"""Every persistent model, imported in one place so the metadata (and Alembic) sees all tables."""

from exam_templates.models import ExamTemplate
from item_bank.models import Item, ItemVersion
from testing_center.accounts.models import ApiToken, CandidateProfile, User
from testing_center.attempts.models import Attempt, AttemptItem, Response
from testing_center.certification.models import Certificate, ShareLink, Verification
from testing_center.operations.models import (
    AuditEntry,
    Booking,
    CandidatePhoto,
    Centre,
    CentreStaff,
    ExamSession,
    Holiday,
    Incident,
    Notification,
    Room,
    SchedulerHeartbeat,
    SessionProctor,
    TimeExtension,
)
from testing_center.psychometrics.models import (
    ItemVersionParameters,
    ParameterSet,
    ScoringCorrection,
)
from testing_center.ratelimit import RateCounter

__all__ = [
    "ApiToken",
    "Attempt",
    "AttemptItem",
    "AuditEntry",
    "Booking",
    "CandidatePhoto",
    "CandidateProfile",
    "Centre",
    "CentreStaff",
    "Certificate",
    "ExamSession",
    "ExamTemplate",
    "Holiday",
    "Incident",
    "Item",
    "ItemVersion",
    "ItemVersionParameters",
    "Notification",
    "ParameterSet",
    "RateCounter",
    "Response",
    "Room",
    "SchedulerHeartbeat",
    "ScoringCorrection",
    "SessionProctor",
    "ShareLink",
    "TimeExtension",
    "User",
    "Verification",
]
