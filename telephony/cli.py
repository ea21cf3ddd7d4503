"""The ``callguard`` command line, built on Click."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from flask import Flask, current_app, has_app_context
from sqlalchemy import select

from restrictions.errors import DomainError
from restrictions.models import User
from restrictions.settings import SettingsError
from telephony.database import session

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
P = ParamSpec("P")
T = TypeVar("T")


def _app() -> Flask:
    """The app a command works on: the one already active (tests), else one built from the
    environment. A missing or wrong setting is one clear line, not a traceback."""
    if has_app_context():
        return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]
    from telephony import create_app
    from telephony.config import ConfigurationError

    try:
        return create_app(serving=False)
    except (ConfigurationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None


def with_app(fn: Callable[P, T]) -> Callable[P, T]:
    """Run the command inside an app context."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with _app().app_context():
            return fn(*args, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("callguard"), prog_name="callguard")
def main() -> None:
    """callguard: a landlord's restrictions applied on its phone line."""


def alembic_config(url: str) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@main.group()
def db() -> None:
    """Database schema."""


def lock_contention(exc: BaseException) -> bool:
    """A migration gave up waiting for a lock, or was chosen as a deadlock's victim: the
    serving release was busy with the table; trying again later is safe."""
    name = type(getattr(exc, "orig", None) or exc).__name__
    return name in {"LockNotAvailable", "DeadlockDetected"}


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option(
    "--attempts", default=6, show_default=True, help="Tries when a lock is not granted in time."
)
def db_upgrade(revision: str, attempts: int) -> None:
    """Apply the Alembic migrations (needs DATABASE_URL only).

    Safe while the previous release serves: each migration waits a bounded time for its locks
    and, when it gives up, the upgrade pauses (1, 2, 4… s) and goes on from that migration."""
    from alembic import command
    from sqlalchemy import make_url
    from sqlalchemy.exc import DBAPIError

    from telephony.config import from_environment

    if has_app_context():
        url = current_app.config["DATABASE_URL"]
    else:  # without an app: DATABASE_URL, or the zero-setup SQLite file
        url = from_environment("DATABASE_URL")
    for attempt in range(1, max(attempts, 1) + 1):
        try:
            command.upgrade(alembic_config(url), revision)  # type: ignore[arg-type]
            break
        except DBAPIError as exc:
            if attempt >= attempts or not lock_contention(exc):
                raise
            pause = min(2 ** (attempt - 1), 30)
            click.echo(
                f"a migration waited too long for a lock (try {attempt} of {attempts});"
                f" trying again in {pause} s",
                err=True,
            )
            time.sleep(pause)
    shown = make_url(url).render_as_string(hide_password=True)
    click.echo(f"database at {shown} is at {revision}")


@main.group()
def users() -> None:
    """Staff users."""


def _password(prompt: bool) -> str | None:
    """A password from the terminal (asked twice, hidden) or from standard input, never argv.
    No terminal and no input: no password (an API-only user)."""
    if sys.stdin.isatty():
        if not prompt:
            return None
        entered: str = click.prompt(
            "Password for the pages (empty for an API-only user)",
            hide_input=True,
            confirmation_prompt=True,
            default="",
            show_default=False,
        )
        return entered or None
    piped = sys.stdin.read().strip("\r\n")
    return piped or None


@users.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["agent", "supervisor", "admin", "integration"]),
    required=True,
    help="integration: another system that only asks for callers' decisions",
)
@click.option(
    "--no-password",
    is_flag=True,
    help="An API-only user: do not ask for a password (otherwise asked, or read from stdin).",
)
@click.option(
    "--display-name",
    default=None,
    help='How letters name them, as signatory or named contact (e.g. "Jo Bloggs").',
)
@click.option(
    "--job-title",
    default=None,
    help="Their job title under their signature (default: their role in words).",
)
@click.option(
    "--direct-line",
    default=None,
    help="Their own phone number, given in letters to customers they are named contact for.",
)
@with_app
def users_add(
    name: str,
    role: str,
    no_password: bool,
    display_name: str | None,
    job_title: str | None,
    direct_line: str | None,
) -> None:
    """Create a staff user and print its API token once, alone on the last line."""
    from restrictions.staff import create_user

    sess = session()
    password = _password(prompt=not no_password)
    try:
        user, token = create_user(
            sess,
            name,
            role,
            password,
            token_days=int(current_app.config["API_TOKEN_DAYS"]),
            display_name=display_name,
            job_title=job_title,
            direct_line=direct_line,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    sess.commit()
    if password is None and user.role != "integration":
        # said out loud: with nothing on standard input this happens without a question asked
        click.echo(
            f"{user.name!r} was made without a password: API only, they cannot sign in to the "
            f"pages. Set one with `callguard users password {user.name}` (that also revokes "
            "the token below).",
            err=True,
        )
    click.echo(f"created {user.role} {user.name!r}; their API token (shown only now):")
    click.echo(token)


def _user(name: str) -> User:
    user = session().scalar(select(User).where(User.name == name))
    if user is None:
        raise click.ClickException(f"no staff user named {name!r}")
    return user


@users.command("password")
@click.argument("name")
@with_app
def users_password(name: str) -> None:
    """Set a new password (asked, or from stdin); every session the user had ends and their
    API tokens are revoked."""
    from restrictions.staff import set_password

    user = _user(name)
    password = _password(prompt=True)
    if not password:
        raise click.ClickException("no password given")
    try:
        set_password(user, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    session().commit()
    click.echo(
        f"password changed for {name!r}; their sessions have ended and their API tokens "
        "are revoked (`callguard users token rotate` issues a new one)"
    )


@users.command("disable")
@click.argument("name")
@with_app
def users_disable(name: str) -> None:
    """Disable a user: their token and every session stop working at once."""
    from restrictions.staff import disable

    disable(_user(name))
    session().commit()
    click.echo(f"{name!r} is disabled; their sessions have ended and their API tokens are revoked")


@users.command("details")
@click.argument("name")
@click.option(
    "--display-name",
    default=None,
    help='How letters name them, as signatory or named contact (e.g. "Jo Bloggs"); "" removes.',
)
@click.option(
    "--job-title",
    default=None,
    help='Their job title under their signature (without one: their role in words); "" removes.',
)
@click.option(
    "--direct-line",
    default=None,
    metavar="NUMBER",
    help='Their own phone number, given in letters to customers they are named contact for; "" '
    "removes.",
)
@with_app
def users_details(
    name: str, display_name: str | None, job_title: str | None, direct_line: str | None
) -> None:
    """Set how letters name and sign as a user; a detail left out stays as it is. The change is
    recorded on the audit trail."""
    from restrictions.lifecycle import Actor
    from restrictions.staff import change_letter_details, letter_details

    if display_name is None and job_title is None and direct_line is None:
        raise click.UsageError('give --display-name, --job-title or --direct-line ("" removes)')
    user = _user(name)
    actor = Actor(None, "callguard users details (command line)")
    try:
        changed = change_letter_details(
            session(),
            actor,
            user,
            display_name=display_name,
            job_title=job_title,
            direct_line=direct_line,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    session().commit()
    click.echo(f"{name!r}: details {'changed' if changed else 'unchanged'}")
    for field, value in letter_details(user).items():
        click.echo(f"  {field.replace('_', ' ')}: {value if value is not None else '(none)'}")


@users.group("token")
def users_token() -> None:
    """A user's API tokens: list, rotate (a new one, printed once), revoke."""


def _when(at: object) -> str:
    from datetime import datetime

    return at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(at, datetime) else "never"


@users_token.command("list")
@click.argument("name")
@with_app
def users_token_list(name: str) -> None:
    """List a user's API tokens: id, state, label, created, expires, last used."""
    from datetime import UTC, datetime

    user, now = _user(name), datetime.now(UTC)
    if not user.api_tokens:
        click.echo(f"{name!r} has no API tokens")
    for token in user.api_tokens:
        times = [
            f"created {_when(token.created_at)}",
            f"expires {_when(token.expires_at)}",
            f"last used {_when(token.last_used_at)}",
        ]
        if token.revoked_at:
            times.append(f"revoked {_when(token.revoked_at)}")
        click.echo(f"#{token.id}  {token.state(now):<7}  {token.label!r}  " + "  ".join(times))


@users_token.command("rotate")
@click.argument("name")
@click.option("--label", default="rotated from the command line", show_default=True)
@with_app
def users_token_rotate(name: str, label: str) -> None:
    """Revoke a user's API tokens and print a new one once, alone on the last line."""
    from restrictions.staff import rotate_token

    user = _user(name)
    if not user.active:
        raise click.ClickException(f"{name!r} is disabled")
    days = int(current_app.config["API_TOKEN_DAYS"])
    try:
        token = rotate_token(user, label=label, days=days)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    session().commit()
    click.echo(
        f"{name!r}: earlier tokens revoked; the new one works for {days} days (shown only now):"
    )
    click.echo(token)


@users_token.command("revoke")
@click.argument("name")
@with_app
def users_token_revoke(name: str) -> None:
    """Revoke every API token of a user at once."""
    from restrictions.staff import revoke_tokens

    revoked = revoke_tokens(_user(name))
    session().commit()
    click.echo(f"{name!r}: {revoked} API token(s) revoked")


@main.command("worker")
@click.option("--with-scheduler", is_flag=True, help="Also run the periodic sweep (every 15 s).")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option(
    "--urgent-only",
    is_flag=True,
    help="Only ring people for waiting callers (a dedicated dialler process).",
)
@with_app
def worker(with_scheduler: bool, burst: bool, urgent_only: bool) -> None:
    """Run callguard's worker: it survives Redis going away and restarts itself."""
    from telephony import startup
    from telephony import worker as worker_process
    from telephony.config import current_settings
    from telephony.redis_store import queue

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # the web's checks (create_app(serving=False) made none of them): one line, no traceback
    refused = startup.refusals(app.config)
    if refused:
        raise click.ClickException("; ".join(refused))
    startup.log_warnings(app, current_settings(), "worker")
    if not queue().is_async:
        raise click.ClickException(
            "neither REDIS_URL nor REDIS_SENTINELS is set: jobs already run inline"
        )
    from telephony import metrics

    metrics.serve_for_worker(app)  # on WORKER_METRICS_PORT, when it is set
    sys.exit(worker_process.run(app, periodic=with_scheduler, burst=burst, urgent_only=urgent_only))


@main.group()
def counters() -> None:
    """Redis counters and caches."""


@counters.command("rebuild")
@with_app
def counters_rebuild() -> None:
    """Rebuild Redis counters, allowances and the routing cache from PostgreSQL, and open the
    alerts the counted calls call for."""
    from restrictions import rebuild
    from telephony.config import current_settings
    from telephony.redis_store import redis_client

    sess = session()
    done = rebuild.rebuild(sess, redis_client(), current_settings().contact_rules)
    sess.commit()
    click.echo(
        f"routing cache: {done.numbers} numbers; contact counters: {done.calls} calls; "
        f"alerts opened: {done.alerts_opened}"
    )


@main.group("export")
def export_group() -> None:
    """Export what callguard holds."""


@export_group.command("customer")
@click.argument("reference")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The ZIP to write ('-' for standard output); subject-access-REF-DATE.zip if left out.",
)
@with_app
def export_customer(reference: str, out: Path | None) -> None:
    """Everything held about a customer (subject access): a ZIP of JSON, one file per table,
    their letters and a readable summary.html. The export is recorded on the audit trail."""
    import contextlib
    from datetime import UTC, datetime
    from typing import IO

    from restrictions import export
    from restrictions.lifecycle import Actor, get_customer
    from telephony import letters
    from telephony.config import current_settings

    sess = session()
    try:
        customer = get_customer(sess, reference)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    actor = Actor(None, "callguard export (command line)")
    to_stdout = out is not None and str(out) == "-"
    path = out or Path(export.filename(customer, datetime.now(UTC).date()))
    target: contextlib.AbstractContextManager[IO[bytes]] = (
        contextlib.nullcontext(sys.stdout.buffer) if to_stdout else path.open("wb")
    )
    with target as fh:
        done = export.write_zip(
            sess, customer, current_settings(), fh, actor=actor, render_letter=letters.render_pdf
        )
        fh.flush()
    sess.commit()
    rows = sum(len(r) for r in done.tables.values())
    summary = (
        f"{customer.reference}: {rows} rows from {len(done.tables)} tables, "
        f"{len(done.files)} letter{'' if len(done.files) == 1 else 's'}"
    )
    click.echo(summary if to_stdout else f"{summary}, written to {path}", err=to_stdout)


@main.command("purge")
@click.option("--dry-run", is_flag=True, help="Print what would go; change nothing.")
@with_app
def purge(dry_run: bool) -> None:
    """Apply the [retention] rules to every table: delete or anonymise what has passed its
    time, and delete Twilio's copies of old voicemails. Prints the counts, rule by rule and
    table by table; a real run records them in one audit entry."""
    from telephony import purging
    from telephony.config import current_settings

    sess = session()
    done = purging.purge(sess, current_settings().retention, dry_run=dry_run)
    if dry_run:
        sess.rollback()
        click.echo("would purge (nothing was changed):")
    else:
        sess.commit()
        click.echo("purged:")
    for line in done.lines():
        click.echo(f"  {line}")
    click.echo("rows deleted, table by table:" if not dry_run else "rows, table by table:")
    for line in done.table_lines():
        click.echo(f"  {line}")


@main.group("import")
def import_() -> None:
    """Import data from the housing management system."""


@import_.command("customers")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_app
def import_customers_command(csv_file: Path) -> None:
    """Import customers from CSV (reference,name,phone_numbers,language; numbers split by ;)."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm import tqdm

    from restrictions.importing import import_customers, refresh_cache_for
    from restrictions.lifecycle import Actor
    from telephony.database import database
    from telephony.redis_store import redis_client

    db, redis = database(), redis_client()

    def refresh(customer_ids: list[int], stale_numbers: list[str]) -> None:
        with db.sessions() as sess:
            refresh_cache_for(sess, redis, customer_ids, stale_numbers)

    with csv_file.open("rb") as raw:  # lines counted in pieces: no line is held whole
        newlines = sum(piece.count(b"\n") for piece in iter(lambda: raw.read(1 << 20), b""))
    total = max(newlines - 1, 0)
    sess = session()
    refreshes: list[Future[None]] = []
    # Each batch's customers go into the routing cache (in order, one batch at a time) while
    # the next batch is written; a failed refresh fails the command once the import is done.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-cache") as refresher,
        # bytes that are not UTF-8 are kept as surrogates: that row is reported, not a traceback
        csv_file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh,
        tqdm(total=total, unit="row", desc="customers", file=sys.stderr, disable=None) as bar,
    ):
        try:
            report = import_customers(
                sess,
                fh,
                Actor(None, f"import:{csv_file.name}"),
                progress=bar.update,
                landed=lambda ids, stale: refreshes.append(refresher.submit(refresh, ids, stale)),
            )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
    for done in refreshes:
        done.result()
    for line, reason in report.skipped:
        click.echo(f"line {line}: {reason}", err=True)
    click.echo(report.summary())


@main.command("demo")
@click.option(
    "--force",
    is_flag=True,
    help="Seed a database that is not the empty zero-setup one (its staff get known passwords).",
)
@with_app
def demo(force: bool) -> None:
    """Seed demonstration customers, restrictions and staff (safe to run again)."""
    from restrictions.demo import refusal, seed
    from telephony.letters import keep_notice_given

    why = None if force else refusal(session(), str(_app().config["DATABASE_URL"]))
    if why:
        raise click.ClickException(f"not seeding demonstration data: {why}; --force to do it")
    for line in seed(session(), keep_notice_given):
        click.echo(line)


@main.command("simulate-call")
@click.argument("from_number")
@click.option("--url", default=None, help="Where the server runs (default PUBLIC_BASE_URL).")
@click.option("--to", "to_number", default=None, help="The number called (default: caller ID).")
@click.option("--digits", default=None, help="Then press these keys (e.g. 1 for emergencies).")
@with_app
def simulate_call(
    from_number: str, url: str | None, to_number: str | None, digits: str | None
) -> None:
    """Send a correctly signed inbound-call webhook to a running server; print what is heard."""
    from telephony.simulate import SimulationError, simulate

    try:
        for line in simulate(_app(), from_number, url=url, to=to_number, digits=digits):
            click.echo(line)
    except SimulationError as exc:
        raise click.ClickException(str(exc)) from exc


@main.group("twilio")
def twilio_group() -> None:
    """Twilio's side: the number's and the TaskRouter workspace's callback URLs."""


@twilio_group.command("configure")
@click.option("--apply", "apply_", is_flag=True, help="Make the changes (default: only show them).")
@click.option("--number", default=None, help="The number, in E.164 (default: [routes] caller_id).")
@click.option(
    "--fallback-url",
    default=None,
    metavar="URL",
    help="Set the number's VoiceFallbackUrl (a TwiML Bin); otherwise it is left as it is.",
)
@click.option("--force", is_flag=True, help="Overwrite URLs that point at another host.")
@with_app
def twilio_configure(
    apply_: bool, number: str | None, fallback_url: str | None, force: bool
) -> None:
    """Show (and with --apply set) the number's and the TaskRouter workspace's callback URLs;
    changes nothing without --apply."""
    from telephony import twilio_setup
    from telephony.twilio_gateway import GatewayError

    try:
        plan = twilio_setup.plan(number=number, fallback_url=fallback_url, force=force)
    except (twilio_setup.SetupError, GatewayError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in plan.lines():
        click.echo(line)
    refused, changes = plan.refused(), plan.changes()
    if refused:
        names = ", ".join(s.name for s in refused)
        why = f"{names}: on another host, not callguard's; --force to overwrite"
        if apply_:
            raise click.ClickException(f"nothing was changed: {why}")
        click.echo(f"dry run, nothing was changed; --apply would refuse: {why}")
    elif not changes:
        click.echo("nothing to change: Twilio is already pointed at callguard")
    elif not apply_:
        click.echo(f"dry run, nothing was changed: --apply to make the {changes} change(s) marked")
    else:
        try:
            done = twilio_setup.apply(plan)
        except GatewayError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"changed {done} setting(s) on Twilio")
