"""The ``testing-center`` command, a Flask CLI group (``flask --app testing_center`` works too)."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select
from tqdm import tqdm
from werkzeug.serving import run_simple

from exam_templates.blueprint import parse_blueprint
from exam_templates.errors import AssemblyError, InvalidTemplate
from exam_templates.services import (
    BLUEPRINTS_DIR,
    build_form,
    current_templates,
    read_template_documents,
)
from item_bank.errors import InvalidItem
from item_bank.models import Item, ItemVersion
from item_bank.qti import write_qti_package
from item_bank.services import export_bundle, import_bundles, read_bundles
from testing_center.accounts.models import Role, User
from testing_center.accounts.services import create_user
from testing_center.attempts.services import rescore_attempts
from testing_center.clock import now
from testing_center.errors import AppError
from testing_center.extensions import MIGRATIONS_DIR, db
from testing_center.seed import (
    DEMO_PASSWORD,
    ensure_demo_accounts,
    ensure_demo_operations,
    seed_content,
)

STAFF_ROLES = [role.value for role in Role if role is not Role.CANDIDATE]


def register_commands(app: Flask) -> None:
    app.cli.add_command(demo)
    app.cli.add_command(seed)
    app.cli.add_command(users)
    app.cli.add_command(items)
    app.cli.add_command(templates)
    app.cli.add_command(scoring)
    app.cli.add_command(scheduler)
    app.cli.add_command(certificates)


def run_seed() -> None:
    report = seed_content(db.session, now())
    db.session.commit()
    click.echo(
        f"templates added: {report.templates_added}; items created: "
        f"{report.items.created}, new versions: {report.items.versioned}, "
        f"unchanged: {report.items.unchanged}"
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def demo(host: str, port: int) -> None:
    """Apply migrations, load the sample bank and demo accounts, then serve."""
    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException(
            "demo creates accounts with a published password; it refuses to run in production"
        )
    upgrade(directory=MIGRATIONS_DIR)
    run_seed()
    accounts = ensure_demo_accounts(db.session, now())
    ensure_demo_operations(db.session, now())
    db.session.commit()
    click.echo(f"database: {db.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"demo accounts (password for all: {DEMO_PASSWORD}):")
    for role, email in accounts:
        click.echo(f"  {role:<10} {email}")
    click.echo(f"open http://{host}:{port}/")
    run_simple(host, port, current_app._get_current_object(), threaded=True)


@click.command()
@with_appcontext
def seed() -> None:
    """Load the shipped templates and sample bank (idempotent)."""
    run_seed()


@click.command()
@click.option("--once", is_flag=True, help="run every sweep once and exit (cron, tests)")
@click.option(
    "--interval",
    default=60,
    show_default=True,
    type=click.IntRange(min=1),
    help="seconds between cycles (with --once: how often cron runs it, for the heartbeat)",
)
@with_appcontext
def scheduler(once: bool, interval: int) -> None:
    """Run the jobs: open and close sessions, finish expired attempts, release results,
    send reminders, expire holds, send e-mail.

    One scheduler acts at a time (a PostgreSQL advisory lock, or a file lock in the
    instance folder on SQLite). A second one waits as a standby and takes over when the
    first stops; with --once it reports the other and exits without acting.
    """
    from testing_center.operations.scheduler import run_forever, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = current_app._get_current_object()
    if not once:
        if not run_forever(app, interval):
            raise click.ClickException("lost the scheduler lock; stopped (restart me)")
        return
    reports = run_once(app, interval)
    if reports is None:
        click.echo("another scheduler is active; nothing done", err=True)
        return
    for report in reports:
        failed = f" ({report.errors} failed)" if report.errors else ""
        click.echo(f"{report.name}: {report.count}{failed}")


@click.group()
def users() -> None:
    """Manage accounts."""


def read_password() -> str:
    """Prompt on a terminal; otherwise take the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users.command("create")
@click.option("--email", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(STAFF_ROLES),
    help="Candidates register themselves, with their ID details.",
)
@with_appcontext
def create_user_command(email: str, role: str) -> None:
    """Create a staff account (password: prompt, or the first line of stdin)."""
    try:
        user = create_user(
            db.session, email=email, password=read_password(), role=Role(role), now=now()
        )
    except AppError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"created {user.role} {user.email} (id {user.id})")


def main() -> None:
    """Entry point of the ``testing-center`` console script."""
    from testing_center import create_app

    FlaskGroup(create_app=create_app, add_version_option=False)()


@click.group()
def items() -> None:
    """Import and export the item bank (YAML authoring files, QTI 3.0 packages)."""


@items.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--status",
    type=click.Choice(["draft", "approved"]),
    default="draft",
    show_default=True,
    help="approved: usable in exams at once (trusted sources)",
)
@with_appcontext
def import_items_command(paths: tuple[Path, ...], status: str) -> None:
    """Import QTI packages/files and YAML files, all or nothing."""
    try:
        bundles = read_bundles(paths)
        total = sum(len(b.items) + len(b.stimuli) for b in bundles)
        with tqdm(total=total, unit="doc", desc="checking", file=sys.stderr, disable=None) as bar:
            report = import_bundles(
                db.session, bundles, status=status, now=now(), progress=bar.update
            )
    except InvalidItem as error:
        db.session.rollback()
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        raise click.ClickException(
            f"import refused, the bank is unchanged: {len(error.problems)} problem(s)"
        ) from error
    db.session.commit()
    click.echo(
        f"items created: {report.created}, new versions: {report.versioned}, "
        f"unchanged: {report.unchanged}, media files: {report.media_stored}"
    )


@items.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--exam-family")
@click.option("--section")
@click.option("--level")
@click.option("--topic")
@with_appcontext
def export_items_command(out: Path, **filters: str | None) -> None:
    """Write the approved, active items (filtered) as a QTI 3.0 content package."""
    chosen = {name: value for name, value in filters.items() if value}
    bundle = export_bundle(db.session, chosen)
    if not bundle.items:
        raise click.ClickException("no approved items match; nothing written")
    write_qti_package(bundle, out)
    click.echo(
        f"wrote {len(bundle.items)} items, {len(bundle.stimuli)} stimuli and "
        f"{len(bundle.media)} media files to {out}"
    )


@click.group()
def templates() -> None:
    """Check exam templates and try assembling forms from the bank."""


@templates.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def validate_templates(paths: tuple[Path, ...]) -> None:
    """Validate template files (default: the shipped ones); every problem is listed."""
    failed = 0
    for path in paths or sorted(BLUEPRINTS_DIR.glob("*.yaml")):
        try:
            blueprint = parse_blueprint(read_template_documents([path])[0])
        except InvalidTemplate as error:
            failed += 1
            click.echo(f"{path}: INVALID", err=True)
            for problem in error.problems:
                click.echo(f"  {problem}", err=True)
            continue
        click.echo(
            f"{path}: ok ({blueprint.code} v{blueprint.version}, "
            f"{blueprint.item_count} items, {blueprint.duration_seconds // 60} min)"
        )
    if failed:
        raise click.ClickException(f"{failed} template(s) invalid")


@templates.command("assemble")
@click.argument("code")
@click.option(
    "--forms",
    default=1,
    show_default=True,
    type=click.IntRange(1, 50),
    help="parallel forms, drawn to overlap as little as the bank allows",
)
@click.option("--seed", default=1, show_default=True, type=int)
@with_appcontext
def assemble_templates(code: str, forms: int, seed: int) -> None:
    """Assemble forms of a template from the current bank (nothing is stored)."""
    template = next((t for t in current_templates(db.session) if t.code == code), None)
    if template is None:
        raise click.ClickException(f"no template {code!r}")
    shown: dict[int, int] = {}
    refs = dict(db.session.execute(select(ItemVersion.id, Item.ref).join(Item)).all())
    drawn = []
    for number in range(forms):
        try:
            form = build_form(
                db.session,
                template,
                seed + number,
                exposure=lambda ids: {i: shown.get(i, 0) for i in ids},
            )
        except AssemblyError as error:
            raise click.ClickException(str(error)) from error
        items = [item for section in form.sections for item in section.items]
        for item in items:
            shown[item.item_id] = shown.get(item.item_id, 0) + 1
        drawn.append({refs[item.version_id] for item in items})
        click.echo(f"form {number + 1} (seed {seed + number}):")
        for section in form.sections:
            click.echo(f"  {section.code}: " + " ".join(refs[i.version_id] for i in section.items))
    if forms > 1:
        overlaps = [len(a & b) / len(a) for i, a in enumerate(drawn) for b in drawn[i + 1 :]]
        click.echo(f"mean overlap between forms: {100 * sum(overlaps) / len(overlaps):.0f}%")


@click.group()
def scoring() -> None:
    """Psychometrics on response files: IRT calibration, classical item analysis."""


def read_responses(path: Path):
    from scoring.irt import read_response_csv

    try:
        return read_response_csv(path)
    except ValueError as error:
        raise click.ClickException(f"{path}: {error}") from error


@scoring.command("calibrate")
@click.option(
    "--responses", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--model", type=click.Choice(["rasch", "2pl", "3pl"]), default="2pl", show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--scaling",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="the constant D of the reported metric: 1 (ltm, mirt) or 1.702 (normal ogive)",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for item characteristic and test information curves (PNG)",
)
def calibrate_command(
    responses: Path, model: str, out: Path, scaling: float, plots: Path | None
) -> None:
    """Estimate item parameters by marginal maximum likelihood (EM) and write them as JSON."""
    from scoring.irt import calibrate

    data = read_responses(responses)
    try:
        result = calibrate(data, model)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    out.write_text(json.dumps(result.as_dict(scaling), indent=2), encoding="utf-8")
    click.echo(
        f"{model}: {len(result.items)} items, log-likelihood {result.log_likelihood:.3f}, "
        f"{result.iterations} EM cycles, converged: {result.converged}"
    )
    for item in result.items:
        click.echo(f"  {item.item_id:<20} a={item.a:7.3f}  b={item.b:7.3f}  c={item.c:5.3f}")
    if plots:
        from scoring.plots import write_analysis_plots

        for path in write_analysis_plots(plots, params=result):
            click.echo(f"wrote {path}")


@scoring.command("analyze")
@click.option(
    "--responses", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for items.csv, summary.json, analysis.json and plots",
)
def analyze_command(responses: Path, out: Path | None) -> None:
    """Classical item analysis: facility, discrimination, reliability, flags."""
    from scoring.analysis import InvalidAnalysisInput, analyze_items, prorated_totals
    from scoring.plots import write_analysis_plots

    data = read_responses(responses)
    try:
        analysis = analyze_items(data.responses, weights=data.weights, item_ids=list(data.item_ids))
    except InvalidAnalysisInput as error:
        raise click.ClickException(str(error)) from error
    test = analysis.test
    alpha = "n/a" if test.alpha is None else f"{test.alpha:.3f}"
    click.echo(
        f"{test.n_persons:g} persons, {test.n_items} items, mean {test.mean:.2f}, alpha {alpha}"
    )
    for row in analysis.to_csv_rows()[1:]:
        flags = f"  <- {row[-1]}" if row[-1] else ""
        click.echo(f"  {row[0]:<20} p={row[2]}  item-rest={row[4]}{flags}")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "items.csv").open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(analysis.to_csv_rows())
        (out / "summary.json").write_text(
            json.dumps(analysis.summary(), indent=2), encoding="utf-8"
        )
        (out / "analysis.json").write_text(
            json.dumps(analysis.as_dict(), indent=2), encoding="utf-8"
        )
        written = write_analysis_plots(out, totals=prorated_totals(data.responses))
        for path in (out / "items.csv", out / "summary.json", out / "analysis.json", *written):
            click.echo(f"wrote {path}")


@scoring.command("rescore")
@click.option("--template", "template_code", help="only attempts at this exam code")
@click.option("--reason", required=True, help="why (kept with every change)")
@click.option("--apply", is_flag=True, help="write the new results (default: dry run)")
@click.option("--by", "actor_email", help="e-mail of the staff member responsible (with --apply)")
@with_appcontext
def rescore_command(
    template_code: str | None, reason: str, apply: bool, actor_email: str | None
) -> None:
    """Score finished attempts again from their stored answers; every change is recorded.

    Corrections (``scoring correct``) and stored item parameters in force apply.
    """
    actor = staff_member(actor_email) if apply else None
    checked, changes = rescore_attempts(
        db.session,
        reason=reason,
        now=now(),
        actor=actor,
        template_code=template_code,
        apply=apply,
    )
    for change in changes:
        click.echo(
            f"  {change.attempt_id}: {change.previous.get('total')} -> "
            f"{change.current.get('total')}"
            f"{'  (pass/fail changed)' if change.pass_changed else ''}"
        )
    flipped = sum(change.pass_changed for change in changes)
    click.echo(
        f"{checked} attempts checked, {len(changes)} changed, {flipped} pass/fail changed"
        + ("" if apply else " (dry run: nothing written; add --apply)")
    )
    if apply:
        db.session.commit()
    else:
        db.session.rollback()


def staff_member(email: str | None) -> User:
    """Return the staff account a scoring change is recorded against (results decide
    visas and jobs: every change names who made it)."""
    if not email:
        raise click.UsageError("say who is responsible: --by EMAIL of a staff account")
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.role not in (Role.OPERATOR, Role.ADMIN):
        raise click.ClickException(f"{email} is not an operator or admin account")
    return user


@scoring.command("correct")
@click.option("--item", "ref", required=True, help="item ref")
@click.option("--version", type=click.IntRange(min=1), help="item version (default: newest)")
@click.option(
    "--action",
    required=True,
    type=click.Choice(["rekey", "credit_all", "drop", "restore"]),
    help="grade with a new key, credit everyone, drop the item, or undo",
)
@click.option("--key", "key_json", help="the corrected key as JSON (rekey), e.g. '\"C\"'")
@click.option("--reason", required=True, help="why (kept with the correction)")
@click.option("--by", "actor_email", required=True, help="e-mail of the staff member responsible")
@with_appcontext
def correct_command(
    ref: str, version: int | None, action: str, key_json: str | None, reason: str, actor_email: str
) -> None:
    """Record how an item is scored from now on; then `scoring rescore` shows and applies it."""
    from testing_center.psychometrics.services import correct_item

    actor = staff_member(actor_email)
    try:
        key = json.loads(key_json) if key_json is not None else None
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--key") from error
    if (action == "rekey") != (key_json is not None):
        raise click.UsageError("--key goes with --action rekey, and only with it")
    try:
        correction = correct_item(
            db.session,
            ref=ref,
            version=version,
            action=action,
            answer_key=key,
            reason=reason,
            actor=actor,
            now=now(),
        )
    except AppError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from error
    db.session.commit()
    click.echo(f"recorded: {ref} {action} (correction {correction.id}); run `scoring rescore`")


@scoring.command("equate")
@click.option(
    "--from",
    "from_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="parameters of the new form (scoring calibrate output)",
)
@click.option(
    "--to",
    "to_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="parameters on the reference scale",
)
@click.option(
    "--method",
    type=click.Choice(["mean-mean", "mean-sigma", "haebara", "stocking-lord"]),
    default="stocking-lord",
    show_default=True,
)
@click.option(
    "--quadrature",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='grid for haebara and stocking-lord: {"points", "x_weights", "y_weights"}',
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the new form's parameters put on the reference scale",
)
def equate_command(
    from_path: Path, to_path: Path, method: str, quadrature: Path | None, out: Path | None
) -> None:
    """Link two calibrations through their common items: theta_Y = A theta_X + B.

    Prints {"A", "B", ...} as JSON.
    """
    from scoring.equating import link, read_quadrature

    try:
        x, y = (json.loads(path.read_text(encoding="utf-8")) for path in (from_path, to_path))
        grids = (
            read_quadrature(json.loads(quadrature.read_text(encoding="utf-8")))
            if quadrature
            else {}
        )
        linking = link(x, y, method, **grids)
    except (ValueError, json.JSONDecodeError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps({"A": linking.A, "B": linking.B, **linking.as_dict()}))
    if out:
        out.write_text(
            json.dumps({"linking": linking.as_dict(), **linking.transform(x)}, indent=2),
            encoding="utf-8",
        )
        click.echo(f"wrote {out}", err=True)


@scoring.command("simulate")
@click.option(
    "--bank",
    "bank_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="item parameters (scoring calibrate output)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="adaptive settings, YAML or JSON (default: SE 0.3 or 30 items, no exposure control)",
)
@click.option("--simulees", default=1000, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option(
    "--r-max",
    type=click.FloatRange(0, 1, min_open=True),
    help="first find Sympson-Hetter parameters keeping every exposure rate below this "
    "(rounds of --simulees simulees)",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="folder for simulees.csv, simulation.json and exposure_rates.png",
)
def simulate_command(
    bank_path: Path,
    config_path: Path | None,
    simulees: int,
    seed: int,
    r_max: float | None,
    out: Path | None,
) -> None:
    """Simulate adaptive tests on a bank: bias and RMSE of ability, lengths, exposure."""
    import dataclasses

    import numpy as np
    import yaml

    from scoring.cat import CatBank, CatConfig, calibrate_sympson_hetter, simulate
    from scoring.errors import InvalidCatConfig
    from scoring.plots import EXPOSURE_FILENAME, exposure_rates

    try:
        bank = CatBank.from_calibration(json.loads(bank_path.read_text(encoding="utf-8")))
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path else {}
        config = CatConfig.from_mapping(raw)
        config.check_bank(bank)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise click.ClickException(f"cannot read the input: {error}") from error
    except InvalidCatConfig as error:
        raise click.ClickException(str(error)) from error
    rng = np.random.default_rng(seed)
    if r_max is not None:
        try:
            found = calibrate_sympson_hetter(bank, config, r_max, rng, simulees=simulees)
        except InvalidCatConfig as error:
            raise click.ClickException(str(error)) from error
        config = dataclasses.replace(
            config, exposure="sympson-hetter", exposure_parameters=found.parameters
        )
        rounds = ", ".join(f"{rate:.3f}" for rate in found.max_exposure)
        click.echo(f"Sympson-Hetter parameters for r_max {r_max:g}: max exposure by round {rounds}")
    thetas = rng.standard_normal(simulees)
    with click.progressbar(length=simulees, label="simulating", file=sys.stderr) as bar:
        result = simulate(bank, config, thetas, rng, progress=bar.update)
    summary = result.summary()
    stopping = f"{config.max_items} items" + (
        f" or SE <= {config.se_target:g} (at least {config.min_items})"
        if config.se_target is not None
        else ""
    )
    click.echo(
        f"{bank.n_items} items, {simulees} simulees (seed {seed}); stop at {stopping}; "
        f"exposure control: {config.exposure}"
    )
    click.echo(f"bias: {summary['bias']:+.4f}")
    click.echo(f"RMSE: {summary['rmse']:.4f}")
    click.echo(f"mean SE: {summary['mean_se']:.4f}")
    click.echo(
        f"mean length: {summary['mean_length']:.2f} "
        f"({summary['min_length']}-{summary['max_length']})"
    )
    click.echo(
        f"max exposure: {summary['max_exposure']:.3f} "
        f"(items never given: {100 * summary['unused_items']:.0f}%)"
    )
    if out:
        out.mkdir(parents=True, exist_ok=True)
        with (out / "simulees.csv").open("w", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(result.simulee_rows())
        document = {
            "seed": seed,
            "summary": summary,
            "config": config.as_dict(),
            "items": [
                {"item_id": item_id, "b": float(b), "exposure_rate": float(rate)}
                for item_id, b, rate in zip(
                    bank.item_ids, bank.b, result.exposure_rate, strict=True
                )
            ],
        }
        (out / "simulation.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
        (out / EXPOSURE_FILENAME).write_bytes(exposure_rates(bank.b, result.exposure_rate, r_max))
        click.echo(f"wrote {out / 'simulees.csv'}, {out / 'simulation.json'}")
        click.echo(f"wrote {out / EXPOSURE_FILENAME}")


@scoring.command("responses")
@click.option("--template", "template_code", required=True, help="exam code")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def responses_command(template_code: str, out: Path) -> None:
    """Write finished attempts as a response CSV (the input of calibrate and analyze)."""
    from testing_center.psychometrics.services import exam_responses

    data = exam_responses(db.session, template_code)
    if not data.n_attempts:
        raise click.ClickException(f"no finished attempts at {template_code!r}")
    with out.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(data.csv_rows())
    click.echo(f"wrote {data.n_attempts} attempts x {len(data.refs)} items to {out}")


@click.group()
def certificates() -> None:
    """Certificates: offline verification, keys, issuing and re-rendering."""


@certificates.command("verify")
@click.argument("document")
@click.option(
    "--jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="public keys (JWKS JSON) to check against; default: this installation's keys",
)
@click.option("--online", "online_url", help="also ask this server for the current status")
@with_appcontext
def verify_certificate_command(document: str, jwks: Path | None, online_url: str | None) -> None:
    """Check FILE.pdf, a TOKEN (or a /verify?t= URL) or a QR code's short link
    (/verify?n=...&s=...): signature, key id, key validity, and that the printed facts
    are the signed ones; with --online, the current status."""
    from certificates.verify import verify_document
    from testing_center.certification.services import key_ring

    moment = now()
    data: bytes | str = read_if_file(document)
    keys = json.loads(jwks.read_text(encoding="utf-8")) if jwks else key_ring(moment).jwks()
    link = short_link(data) if isinstance(data, str) else None
    if link is not None:
        verify_short_link(*link, keys, online_url)
        return
    checked = verify_document(data, keys, moment)
    click.echo(json.dumps(checked.as_dict(), indent=2, ensure_ascii=False))
    if online_url and checked.claims is not None:
        click.echo(f"status online: {online_status(online_url, checked.claims)}")
    if not checked.is_valid:
        raise SystemExit(1)


def short_link(argument: str) -> tuple[str, str] | None:
    """The number and signature of a QR code's short link, or None for anything else."""
    import urllib.parse

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(argument.strip()).query)
    if "n" in query and "s" in query and "t" not in query:
        return query["n"][0], query["s"][0]
    return None


def verify_short_link(number: str, signature: str, keys, online_url: str | None) -> None:
    """Check a short link's signature offline. It proves that this installation issued
    the number; the facts and the status are on the page the link opens, so --online
    prints that page's address."""
    from certificates.errors import TokenError
    from certificates.links import verification_link, verify_link

    try:
        key = verify_link(number, signature, keys)
    except TokenError as error:
        click.echo(json.dumps({"link": True, "number": number, "status": "invalid",
                               "reason": str(error)}, indent=2))  # fmt: skip
        raise SystemExit(1) from None
    click.echo(json.dumps({"link": True, "number": number, "status": "genuine link",
                           "key_id": key.kid}, indent=2))  # fmt: skip
    if online_url:
        click.echo(f"status online: see {verification_link(online_url, number, signature)}")


def read_if_file(argument: str) -> bytes | str:
    """The file's bytes when ``argument`` names a file, else the argument (a token)."""
    try:
        path = Path(argument)
        return path.read_bytes() if path.is_file() else argument
    except OSError:  # a token is longer than any file name may be
        return argument


def online_status(base_url: str, claims) -> str:
    """Ask a server's public API for a certificate's current status."""
    import urllib.error
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode({"date_of_birth": claims.date_of_birth.isoformat()})
    url = f"{base_url.rstrip('/')}/api/v1/certificates/{claims.number}?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - operator-given URL
            return json.loads(response.read())["status"]
    except urllib.error.HTTPError as error:
        return f"not found ({error.code})" if error.code == 404 else f"error {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return f"unreachable ({error})"


@certificates.command("rotate-key")
@with_appcontext
def rotate_key_command() -> None:
    """Start signing with a new key; the old ones stay published for verification."""
    from certificates.signing import rotate_key
    from testing_center.certification.services import key_folder

    if current_app.config.get("CERTIFICATE_KEYS_PEM"):
        raise click.ClickException("keys come from CERTIFICATE_KEYS_PEM: rotate them there")
    key = rotate_key(key_folder(), now())
    current_app.extensions.pop("certificate_keys", None)
    click.echo(f"new signing key {key.kid}; restart the web workers to sign with it")


@certificates.command("issue")
@with_appcontext
def issue_certificates_command() -> None:
    """Issue certificates for released results and re-issue re-scored ones (as the
    scheduler does every cycle)."""
    from testing_center.operations.scheduler import issue_certificates, reissue_certificates

    issued = issue_certificates(db.session, now())
    reissued = reissue_certificates(db.session, now())
    db.session.commit()
    click.echo(f"issued {issued}, re-issued {reissued}")


@certificates.command("render")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--status", default="valid", show_default=True)
@with_appcontext
def render_certificates_command(out: Path, status: str) -> None:
    """Render stored certificates again as PDFs (after a layout change): the same facts
    and the same signed token, so every re-rendered document still verifies."""
    from testing_center.certification.models import Certificate
    from testing_center.certification.services import certificate_pdf

    out.mkdir(parents=True, exist_ok=True)
    rows = db.session.scalars(select(Certificate).where(Certificate.status == status)).all()
    with click.progressbar(rows, label="rendering") as bar:
        for certificate in bar:
            (out / f"{certificate.number}.pdf").write_bytes(
                certificate_pdf(db.session, certificate)
            )
    click.echo(f"wrote {len(rows)} certificates to {out}")
