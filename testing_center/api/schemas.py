"""Marshmallow schemas: the one source of request validation and of the OpenAPI document."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from testing_center.accounts.services import MAX_PASSWORD_LENGTH

MAX_CLIENT_SEQ = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL
MAX_SAVE_RETRIES = 100_000  # a page retries at most every 10 s: far beyond any exam


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code"})
    message = fields.String(required=True, metadata={"description": "Human-readable message"})
    details = fields.Raw(metadata={"description": "Per-field problems, when there are any"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)
    database = fields.String(required=True)


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH)
    )
    full_name = fields.String(
        required=True,
        validate=validate.Length(min=2, max=200),
        metadata={"description": "Exactly as on the ID document"},
    )
    date_of_birth = fields.Date(required=True)
    nationality = fields.String(
        required=True,
        validate=validate.Length(equal=2),
        metadata={"description": "ISO 3166-1 alpha-2, e.g. UZ"},
    )
    id_document_number = fields.String(required=True, validate=validate.Length(min=5, max=40))
    phone_number = fields.String(
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={"description": "Optional, with the country code: +998901234567"},
    )
    consent = fields.Boolean(
        load_default=False,
        metadata={
            "description": "True when the candidate accepted the consent text of "
            "GET /api/v1/auth/consent; its version and time are recorded"
        },
    )


class ConsentSectionSchema(Schema):
    heading = fields.String()
    text = fields.String()


class ConsentSchema(Schema):
    version = fields.String(metadata={"description": "Recorded with the profile on consent"})
    sections = fields.List(fields.Nested(ConsentSectionSchema))


class UserSchema(Schema):
    id = fields.Integer()
    email = fields.String()
    role = fields.String()
    full_name = fields.String(attribute="profile.full_name", allow_none=True)


class PasswordChangeSchema(Schema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH)
    )
    new_password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH)
    )


class TokenRequestSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH)
    )


class TokenSchema(Schema):
    token = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)


class ScaleSchema(Schema):
    min = fields.Float()
    max = fields.Float()
    unit = fields.String()


class SectionSummarySchema(Schema):
    code = fields.String()
    title = fields.String()
    item_count = fields.Integer()
    duration_seconds = fields.Integer(allow_none=True, metadata={"description": "own clock"})


class ScoringSectionSchema(Schema):
    code = fields.String()
    title = fields.String()


class ExamSchema(Schema):
    code = fields.String()
    version = fields.Integer()
    title = fields.String()
    description = fields.String(allow_none=True)
    modes = fields.List(fields.String())
    clock = fields.String()
    navigation = fields.String()
    duration_seconds = fields.Integer()
    item_count = fields.Integer()
    sections = fields.List(fields.Nested(SectionSummarySchema))
    scoring_sections = fields.List(fields.Nested(ScoringSectionSchema))
    scoring = fields.Dict(metadata={"description": "Rule, scale and pass rule"})
    available = fields.Boolean()
    unavailable_reason = fields.String(allow_none=True)


class StartAttemptSchema(Schema):
    exam_code = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "practice"}
    )
    booking_id = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "proctored: a checked-in booking in an open session"},
    )

    @validates_schema
    def one_of(self, data, **kwargs):
        if ("exam_code" in data) == ("booking_id" in data):
            raise ValidationError("give exam_code (practice) or booking_id (proctored)")


class OptionSchema(Schema):
    id = fields.String()
    html = fields.String()


class AudioStateSchema(Schema):
    play_limit = fields.Integer()
    plays_used = fields.Integer()


class AttemptItemSchema(Schema):
    ref = fields.String()
    position = fields.Integer()
    type = fields.String(
        metadata={
            "description": "single_choice, multiple_response, ordering, "
            "text_entry, matching or true_false"
        }
    )
    stem = fields.String()
    options = fields.List(
        fields.Nested(OptionSchema), metadata={"description": "choices, or fragments to order"}
    )
    star_position = fields.Integer(allow_none=True, metadata={"description": "ordering: ★ slot"})
    max_length = fields.Integer(metadata={"description": "text_entry: longest answer"})
    prompts = fields.List(fields.Nested(OptionSchema), metadata={"description": "matching"})
    choices = fields.List(fields.Nested(OptionSchema), metadata={"description": "matching"})
    audio = fields.Nested(AudioStateSchema)
    stimulus = fields.String(metadata={"description": "key of the shared stimulus, e.g. s1"})
    response = fields.Raw(allow_none=True)
    flagged = fields.Boolean()
    client_seq = fields.Integer()


class StimulusStateSchema(Schema):
    id = fields.String(metadata={"description": "s1, s2... (items name it in stimulus)"})
    kind = fields.String()
    html = fields.String()
    audio = fields.Nested(AudioStateSchema)


class PlayGrantSchema(Schema):
    url = fields.String(metadata={"description": "fetch the recording here (short-lived)"})
    play_limit = fields.Integer()
    plays_used = fields.Integer()


class SectionStateSchema(Schema):
    code = fields.String()
    title = fields.String()
    status = fields.String(metadata={"description": "waiting, break, open or finished"})
    started_at = fields.AwareDateTime(allow_none=True)
    deadline_at = fields.AwareDateTime(allow_none=True)
    remaining_seconds = fields.Integer()
    break_until = fields.AwareDateTime(allow_none=True)
    item_count = fields.Integer(metadata={"description": "adaptive: the items given so far"})
    items = fields.List(
        fields.Nested(AttemptItemSchema),
        metadata={"description": "open only; an open adaptive section shows its current item"},
    )
    adaptive = fields.Boolean(metadata={"description": "items chosen one by one as answered"})
    max_items = fields.Integer(metadata={"description": "the most items the section can have"})


class SectionClockSchema(Schema):
    code = fields.String()
    status = fields.String()
    deadline_at = fields.AwareDateTime(allow_none=True)
    remaining_seconds = fields.Integer()
    break_until = fields.AwareDateTime(allow_none=True)


class CurrentSectionSchema(SectionClockSchema):
    title = fields.String()


class ExamRefSchema(Schema):
    code = fields.String()
    version = fields.Integer()
    title = fields.String()


class AttemptStateSchema(Schema):
    id = fields.String()
    status = fields.String()
    mode = fields.String()
    paused = fields.Boolean(
        metadata={"description": "paused by the proctor: the clock stands still, saves wait"}
    )
    exam = fields.Nested(ExamRefSchema)
    server_time = fields.AwareDateTime()
    started_at = fields.AwareDateTime()
    deadline_at = fields.AwareDateTime()
    remaining_seconds = fields.Integer()
    clock = fields.String()
    navigation = fields.String(metadata={"description": "free or sequential"})
    current_section = fields.Nested(CurrentSectionSchema)
    sections = fields.List(fields.Nested(SectionStateSchema))
    stimuli = fields.Dict(keys=fields.String(), values=fields.Nested(StimulusStateSchema))
    item_count = fields.Integer()
    answered_count = fields.Integer()


class AttemptClockSchema(Schema):
    id = fields.String()
    status = fields.String()
    paused = fields.Boolean()
    server_time = fields.AwareDateTime()
    deadline_at = fields.AwareDateTime()
    remaining_seconds = fields.Integer()
    current_section = fields.Nested(SectionClockSchema)


class SaveResponseSchema(Schema):
    response = fields.Raw(
        required=True,
        allow_none=True,
        metadata={"description": 'The answer, e.g. "B"; null clears it'},
    )
    client_seq = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=MAX_CLIENT_SEQ)
    )
    flagged = fields.Boolean(load_default=None)
    retries = fields.Integer(
        load_default=0,
        strict=True,
        validate=validate.Range(min=0, max=MAX_SAVE_RETRIES),
        metadata={
            "description": "Tries that failed (network or server trouble) since the page's "
            "last acknowledged save; shown to the proctor"
        },
    )


class SaveAckSchema(Schema):
    item_ref = fields.String()
    accepted = fields.Boolean(metadata={"description": "False when a newer save is stored"})
    client_seq = fields.Integer(metadata={"description": "Sequence number of the stored save"})
    response = fields.Raw(allow_none=True)
    flagged = fields.Boolean()
    saved_at = fields.AwareDateTime(allow_none=True)
    server_time = fields.AwareDateTime()
    section_code = fields.String(metadata={"description": "The answer's section"})
    remaining_seconds = fields.Integer(
        metadata={
            "description": "Seconds left in the answer's section at server_time, as the "
            "clock would say: the page keeps its countdown true from its saves"
        }
    )


class ReviewItemSchema(AttemptItemSchema):
    section = fields.String()
    correct_answer = fields.Raw(metadata={"description": "the key, in the response format"})
    credit = fields.Float()
    explanation = fields.String()

    class Meta:
        exclude = ("audio", "client_seq")


class StudyRowSchema(Schema):
    section = fields.String()
    topic = fields.String()
    points = fields.Float()
    items = fields.Integer()
    percent = fields.Integer()


class ReviewSchema(Schema):
    study = fields.List(
        fields.Nested(StudyRowSchema),
        metadata={"description": "per section and topic, weakest first"},
    )
    attempt_id = fields.String()
    exam = fields.Nested(ExamRefSchema)
    items = fields.List(fields.Nested(ReviewItemSchema))
    stimuli = fields.Dict(keys=fields.String(), values=fields.Nested(StimulusStateSchema))


class SectionScoreSchema(Schema):
    code = fields.String()
    title = fields.String()
    points = fields.Float()
    max_points = fields.Float()
    percent = fields.Float()
    scaled = fields.Float(allow_none=True, metadata={"description": "score on the section scale"})
    scale_max = fields.Float(allow_none=True)
    minimum = fields.Float(allow_none=True, metadata={"description": "sectional pass minimum"})
    meets_minimum = fields.Boolean()
    theta = fields.Float(allow_none=True, metadata={"description": "per-section IRT ability"})
    conditional_sem = fields.Float(
        allow_none=True, metadata={"description": "the section's standard error on its scale"}
    )


class ResultSchema(Schema):
    attempt_id = fields.String()
    exam = fields.Nested(ExamRefSchema)
    mode = fields.String()
    status = fields.String()
    finished_at = fields.AwareDateTime(allow_none=True)
    finish_reason = fields.String(allow_none=True)
    sections = fields.List(fields.Nested(SectionScoreSchema))
    raw_points = fields.Float(allow_none=True)
    raw_max = fields.Float(allow_none=True)
    total = fields.Float(allow_none=True)
    total_max = fields.Float(allow_none=True)
    percent = fields.Float(allow_none=True)
    scale = fields.Nested(ScaleSchema)
    pass_rule = fields.Dict()
    passed = fields.Boolean(allow_none=True)
    band = fields.String(allow_none=True)
    theta = fields.Float(allow_none=True, metadata={"description": "IRT ability (irt rule)"})
    conditional_sem = fields.Float(
        allow_none=True, metadata={"description": "standard error on the scale"}
    )
    scoring_version = fields.String(allow_none=True)
    item_parameters = fields.List(
        fields.String(),
        allow_none=True,
        metadata={"description": "IRT rules: the item parameter versions the score rests on"},
    )
    released = fields.Boolean(
        metadata={"description": "false until a proctored session's results are released"}
    )
    certificate_number = fields.String(allow_none=True)
