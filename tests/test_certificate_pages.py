"""The certificate pages with signed-in cookie sessions and CSRF on: candidates see their
certificate number, download the PDF, the practice report and the Open Badges file, and
share a link that expires; employers upload a CSV and get each status (a malformed line
refuses the whole file, naming the line, and nothing is logged); operators revoke from
the page; every page renders in the four languages."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from testing_center.accounts.models import Role, User
from testing_center.attempts.models import Attempt
from testing_center.attempts.services import rescore_attempts
from testing_center.certification.models import Certificate, Verification
from testing_center.certification.services import BatchError, parse_batch_csv
from testing_center.extensions import db
from testing_center.operations.models import AuditEntry, Notification
from testing_center.operations.scheduler import run_cycle
from testing_center.psychometrics.services import correct_item

from . import test_certificates
from .conftest import PASSWORD
from .operations_setup import EXAM, other_centre_operator
from .test_certificates import BORN, release

sit = test_certificates.sit  # the fixture: a candidate books, is checked in and sits

LANGUAGES = ("ja", "uz", "ru", "en")


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


class Browser:
    """One person's cookie session: signed in with the form, posting with the CSRF token."""

    def __init__(self, app, email: str) -> None:
        self.client = app.test_client()
        login = self.client.get("/login").text
        response = self.client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token_of(login)}
        )
        assert response.status_code == 302, response.text
        self.token = token_of(self.client.get("/", follow_redirects=True).text)

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)


def token_of(page: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def holder_email(app, attempt_id: str) -> str:
    with app.app_context():
        return db.session.get(User, db.session.get(Attempt, attempt_id).user_id).email


def only_number(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Certificate.number).where(Certificate.status == "valid"))


def verifications(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Verification))


@pytest.fixture
def certified(app, clock, sit):
    """A candidate with a released, certified proctored result, signed in."""
    _headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    return Browser(app, holder_email(app, attempt_id)), attempt_id, only_number(app)


def upload(employer: Browser, text: str, name: str = "check.csv"):
    return employer.post(
        "/employer/verifications",
        {"document": (io.BytesIO(text.encode()), name), "text": ""},
        content_type="multipart/form-data",
    )


# ---- candidates -------------------------------------------------------------------------


def test_candidate_sees_the_number_and_downloads_the_pdf(app, certified):
    """The results pages show the certificate number and a working PDF link."""
    candidate, attempt_id, number = certified
    results = candidate.get("/results").text
    assert number in results and "Download the certificate (PDF)" in results
    pdf_url = f"/api/v1/attempts/{attempt_id}/certificate.pdf"
    assert f'href="{pdf_url}"' in results
    detail = candidate.get(f"/attempts/{attempt_id}/result").text
    assert number in detail and f'href="{pdf_url}"' in detail
    pdf = candidate.get(pdf_url)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert number in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()


def test_candidate_downloads_the_open_badge(app, certified):
    """The Open Badges link downloads the signed credential as a JSON file."""
    candidate, _attempt_id, number = certified
    badge = candidate.get(f"/results/certificates/{number}/badge.json")
    assert badge.status_code == 200 and "attachment" in badge.headers["Content-Disposition"]
    exported = json.loads(badge.data)
    assert "OpenBadgeCredential" in exported["credential"]["type"] and exported["jwt"]


def test_practice_attempt_gets_a_practice_report_not_a_certificate(
    app, client, world, make_candidate, auth_headers
):
    """A practice result offers the practice report, plainly not a certificate."""
    account = make_candidate()
    headers = auth_headers(account)
    state = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers).json
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
    candidate = Browser(app, account.email)
    results = candidate.get("/results").text
    assert "Download the practice report (PDF)" in results
    assert "not a certificate" in results and "Download the certificate (PDF)" not in results
    report = candidate.get(f"/api/v1/attempts/{state['id']}/certificate.pdf")
    assert report.status_code == 200
    assert "PRACTICE" in PdfReader(io.BytesIO(report.data)).pages[0].extract_text()


def test_share_link_from_the_page_works_and_expires(app, clock, certified):
    """A link shared from the page shows the certificate to anyone until it expires."""
    candidate, _attempt_id, number = certified
    shared = candidate.post(f"/results/certificates/{number}/share", {"days": "7"})
    assert shared.status_code == 200
    url = html.unescape(re.search(r'id="share-url" type="text" value="([^"]+)"', shared.text)[1])
    expires = (clock() + dt.timedelta(days=7)).strftime("%Y-%m-%d %H:%M")
    assert expires in shared.text
    path = url.split("127.0.0.1:5000", 1)[1]
    stranger = app.test_client()
    seen = stranger.get(path)
    assert seen.status_code == 200 and "Valid certificate" in seen.text and number in seen.text
    clock.advance(days=7, seconds=1)
    gone = stranger.get(path)
    assert gone.status_code == 404 and "expired" in gone.text


def test_share_needs_the_csrf_token_and_the_own_certificate(app, certified, make_candidate):
    """A share without the token, or of someone else's certificate, is refused."""
    candidate, _attempt_id, number = certified
    forged = candidate.client.post(f"/results/certificates/{number}/share", data={"days": "7"})
    assert forged.status_code in (400, 403)
    other = Browser(app, make_candidate().email)
    assert other.post(f"/results/certificates/{number}/share", {"days": "7"}).status_code == 404
    assert other.get(f"/results/certificates/{number}/badge.json").status_code == 404


def share_path(candidate, number: str) -> str:
    shared = candidate.post(f"/results/certificates/{number}/share", {"days": "30"})
    url = html.unescape(re.search(r'id="share-url" type="text" value="([^"]+)"', shared.text)[1])
    return url.split("127.0.0.1:5000", 1)[1]


def as_seen(page: str, path: str) -> str:
    """The page without its own address (in the language forms) and its CSRF tokens
    (signed afresh with a time on every page)."""
    page = page.replace(path, "PATH")
    return re.sub(r'(name="csrf-token" content|name="csrf_token" value)="[^"]+"', "", page)


def withdraw_forms(page: str) -> list[tuple[str, str]]:
    """(action, token) of each withdraw button on a results page."""
    return [
        (html.unescape(action), token)
        for action, token in re.findall(
            r'<form method="post" action="([^"]+)" class="inline withdraw-share-form">\s*'
            r'<input type="hidden" name="csrf_token" value="[^"]+">\s*'
            r'<input type="hidden" name="token" value="([^"]+)">',
            page,
        )
    ]


def test_holder_withdraws_a_share_link_from_the_results_page(app, clock, certified):
    """The results page lists the live links, each with a withdraw button (a CSRF form);
    once withdrawn the link answers exactly as a link that never existed, the other
    link still works, and the audit log has the withdrawal without the token."""
    candidate, _attempt_id, number = certified
    first, second = share_path(candidate, number), share_path(candidate, number)
    stranger = app.test_client()
    nowhere = "/verify/shared/no-such-link-at-all"
    unknown = stranger.get(nowhere)
    forms = withdraw_forms(candidate.get("/results").text)
    assert sorted(token for _action, token in forms) == sorted(
        path.rsplit("/", 1)[1] for path in (first, second)
    )
    action = forms[0][0]
    token = first.rsplit("/", 1)[1]
    forged = candidate.client.post(action, data={"token": token})
    assert forged.status_code in (400, 403)
    assert stranger.get(first).status_code == 200
    done = candidate.post(action, {"token": token}, follow_redirects=True)
    assert done.status_code == 200 and "The link was withdrawn" in done.text
    gone = stranger.get(first)
    assert (gone.status_code, as_seen(gone.text, first)) == (404, as_seen(unknown.text, nowhere))
    assert stranger.get(second).status_code == 200
    assert [t for _a, t in withdraw_forms(candidate.get("/results").text)] == [
        second.rsplit("/", 1)[1]
    ]
    again = candidate.post(action, {"token": token}, follow_redirects=True)
    assert "No such shared link." in again.text  # refused, and said so on the page
    with app.app_context():
        entry = db.session.scalar(
            select(AuditEntry).where(AuditEntry.action == "certificate.share_withdrawn")
        )
        assert entry.entity_id == number and token not in json.dumps(entry.after)


def test_only_the_holder_can_withdraw_a_share_link(app, certified, make_candidate):
    """Another candidate withdrawing the holder's link, by the holder's number or by
    their own certificate's number, gets 404 and the link keeps working."""
    candidate, _attempt_id, number = certified
    path = share_path(candidate, number)
    token = path.rsplit("/", 1)[1]
    other = Browser(app, make_candidate().email)
    url = f"/results/certificates/{number}/share/withdraw"
    assert other.post(url, {"token": token}).status_code == 404
    assert app.test_client().get(path).status_code == 200


def test_candidate_is_told_of_a_superseded_certificate(app, clock, sit):
    """After a re-score, the results page gives the new number and says the old one is
    no longer valid."""
    _headers, attempt_id, session_id = sit(right=2)
    release(app, clock, session_id)
    candidate, old_number = Browser(app, holder_email(app, attempt_id)), only_number(app)
    with app.app_context():
        correct_item(
            db.session,
            ref="ops-3",
            version=None,
            action="credit_all",
            answer_key=None,
            reason="ambiguous item",
            actor=None,
            now=clock(),
        )
        rescore_attempts(db.session, reason="ambiguous item", now=clock())
        db.session.commit()
        run_cycle(db.session, clock)
    new_number = only_number(app)
    page = candidate.get("/results").text
    assert new_number != old_number and new_number in page
    assert f"Certificate {old_number} is no longer valid" in page and new_number in page


# ---- employers --------------------------------------------------------------------------


def test_employer_upload_gives_each_status(app, certified, make_staff):
    """An uploaded CSV is checked line by line; the batch page, its CSV and the history
    show the statuses."""
    _candidate, _attempt_id, number = certified
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    assert 'href="/employer/verifications" id="employer-checks"' in employer.get("/").text
    checked = upload(
        employer,
        "number,date_of_birth\n"
        f"{number},{BORN.isoformat()}\n"
        f"{number},01.01.1990\n"
        "\n"
        f"{number.lower()},{BORN.strftime('%d.%m.%Y')}\n"
        "JP-12345-67890-ABCDE,1998-05-17\n",
    )
    assert checked.status_code == 302, checked.text
    page = employer.get(checked.headers["Location"])
    statuses = re.findall(r'<tr data-status="([a-z_]+)">', page.text)
    assert statuses == ["valid", "not_found", "valid", "not_found"]
    assert "Dilnoza Oʻrinboyeva" in page.text and "perhaps mistyped" in page.text
    batch = checked.headers["Location"].rsplit("/", 1)[1]
    report = employer.get(f"/api/v1/employer/verifications/{batch}.csv")
    lines = report.text.strip().splitlines()
    assert lines[0].startswith("number,status,full_name")
    assert lines[1].startswith(f"{number},valid,Dilnoza") and ",not_found," in lines[2]
    history = employer.get("/employer/verifications").text
    assert f'data-batch="{batch}"' in history and f"{batch}.csv" in history


def test_a_malformed_line_refuses_the_file_and_logs_nothing(app, certified, make_staff):
    """A bad line refuses the whole upload, names its line, and checks nothing."""
    _candidate, _attempt_id, number = certified
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    before = verifications(app)
    refused = upload(
        employer,
        f"number,date_of_birth\n{number},{BORN.isoformat()}\n{number},17/05/98\n{number}\n",
    )
    assert refused.status_code == 422
    assert "Line 3:" in refused.text and "Line 4:" in refused.text
    assert "Line 2:" not in refused.text and "Nothing was checked" in refused.text
    assert verifications(app) == before
    assert 'data-batch="' not in employer.get("/employer/verifications").text


def test_more_than_500_lines_are_refused(app, make_staff):
    """A file of more than 500 certificates is refused whole."""
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    refused = upload(employer, "".join(f"JP-{n:05d},1998-05-17\n" for n in range(501)))
    assert refused.status_code == 422 and "at most 500" in refused.text
    assert verifications(app) == 0


def test_another_employer_cannot_see_or_download_the_batch(app, certified, make_staff):
    """A batch is its employer's own: another employer gets "not found"."""
    _candidate, _attempt_id, number = certified
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    checked = upload(employer, f"{number},{BORN.isoformat()}\n")
    batch = checked.headers["Location"].rsplit("/", 1)[1]
    other = Browser(app, make_staff(Role.EMPLOYER).email)
    assert other.get(f"/employer/verifications/{batch}").status_code == 404
    assert other.get(f"/api/v1/employer/verifications/{batch}.csv").status_code == 404
    assert f'data-batch="{batch}"' not in other.get("/employer/verifications").text
    candidate, *_ = certified
    assert candidate.get("/employer/verifications").status_code == 403


def test_batch_lines_are_parsed_plainly():
    """Comma, semicolon or tab; ISO or day-first dates; a header in any language."""
    items = parse_batch_csv(
        "\ufeffНомер;Дата рождения\r\n\r\nJP-1;1998-05-17\r\n jp-2 ; 17.05.1998 ;\r\n"
    )
    assert [i["number"] for i in items] == ["JP-1", "jp-2"]
    assert {i["date_of_birth"] for i in items} == {BORN}
    assert parse_batch_csv("JP-1\t1998-05-17")[0]["date_of_birth"] == BORN
    with pytest.raises(BatchError) as refused:
        parse_batch_csv("JP-1,1998-05-17\nnumber,date_of_birth\nJP-2,1998-02-30\n")
    assert [p["line"] for p in refused.value.details] == [2, 3]
    with pytest.raises(BatchError):
        parse_batch_csv("number,date_of_birth\n")


# ---- operators --------------------------------------------------------------------------


def test_operator_revokes_from_the_page(app, client, world, certified):
    """Revoking needs the confirmation; then /verify and the holder's page say REVOKED,
    the audit log has it and the holder is told."""
    candidate, _attempt_id, number = certified
    operator = Browser(app, world["operator"].email)
    listing = operator.get("/staff/operations/certificates").text
    assert f'data-number="{number}"' in listing and "Dilnoza Oʻrinboyeva" in listing
    found = operator.get("/staff/operations/certificates", query_string={"q": number.lower()})
    assert number in found.text
    nothing = operator.get("/staff/operations/certificates", query_string={"q": "ZZZZZ"})
    assert number not in nothing.text
    page = operator.get(f"/staff/operations/certificates/{number}").text
    assert 'id="revoke"' in page and 'name="confirm"' in page
    unconfirmed = operator.post(
        f"/staff/operations/certificates/{number}/revoke",
        {"category": "misconduct", "reason": "impersonation found on video"},
    )
    assert unconfirmed.status_code == 302 and only_number(app) == number
    revoked = operator.post(
        f"/staff/operations/certificates/{number}/revoke",
        {"category": "misconduct", "reason": "impersonation found on video", "confirm": "y"},
        follow_redirects=True,
    )
    assert revoked.status_code == 200 and "is revoked" in revoked.text
    assert 'id="revoke"' not in revoked.text
    with app.app_context():
        token = db.session.scalar(select(Certificate.token))
        reason = select(AuditEntry.reason).where(AuditEntry.action == "certificate.revoke")
        assert db.session.scalar(reason) == "impersonation found on video"
        assert "certificate_revoked" in db.session.scalars(select(Notification.kind)).all()
    shown = client.get("/verify", query_string={"t": token}).text
    assert "REVOKED" in shown and "Misconduct" in shown
    mine = candidate.get("/results").text
    assert "REVOKED" in mine and "Download the certificate (PDF)" not in mine


def test_operator_of_another_centre_cannot_see_or_revoke(app, client, world, certified, make_staff):
    """An operator tied to another centre finds the certificate neither listed nor
    revocable: it answers "not found"."""
    _candidate, _attempt_id, number = certified
    account = other_centre_operator(app, client, world, make_staff)
    other = Browser(app, account.email)
    assert number not in other.get("/staff/operations/certificates").text
    assert other.get(f"/staff/operations/certificates/{number}").status_code == 404
    refused = other.post(
        f"/staff/operations/certificates/{number}/revoke",
        {"category": "misconduct", "reason": "x", "confirm": "y"},
    )
    assert refused.status_code == 404 and only_number(app) == number


def test_revoke_page_is_for_operators(app, certified, make_staff):
    """Employers and candidates cannot open or use the operators' certificate pages."""
    candidate, _attempt_id, number = certified
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    for person in (candidate, employer):
        assert person.get("/staff/operations/certificates").status_code == 403
        refused = person.post(
            f"/staff/operations/certificates/{number}/revoke",
            {"category": "misconduct", "reason": "x", "confirm": "y"},
        )
        assert refused.status_code == 403
    assert only_number(app) == number


# ---- languages --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pages_render_in_every_language(app, world, certified, make_staff, lang):
    """Each certificate page renders in ja, uz, ru and en, in that language."""
    candidate, attempt_id, number = certified
    employer = Browser(app, make_staff(Role.EMPLOYER).email)
    operator = Browser(app, world["operator"].email)
    checked = upload(employer, f"{number},{BORN.isoformat()}\n")
    bad = "JP-1,not a date\n"
    pages = [
        (candidate, "get", "/results", "Download the certificate (PDF)"),
        (candidate, "get", f"/attempts/{attempt_id}/result", "Share a link"),
        (candidate, "post", f"/results/certificates/{number}/share", "Back to my results"),
        (employer, "get", "/employer/verifications", "Earlier checks"),
        (employer, "get", checked.headers["Location"], "Download CSV"),
        (employer, "upload", bad, "Nothing was checked"),
        (operator, "get", "/staff/operations/certificates", "Certificates"),
        (operator, "get", f"/staff/operations/certificates/{number}", "Revoke this certificate"),
    ]
    for person in (candidate, employer, operator):
        person.post(f"/language/{lang}", {"next": "/"})
    for person, method, target, english in pages:
        if method == "upload":
            response = upload(person, target)
        elif method == "post":
            response = person.post(target, {"days": "30"})
        else:
            response = person.get(target)
        assert response.status_code in (200, 422), (lang, target)
        assert f'<html lang="{lang}">' in response.text
        assert (english in response.text) == (lang == "en"), (lang, target, english)
