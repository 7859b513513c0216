"""`segengine audience …`: create, list, show, refresh, upload, top-N, combine, export, sync, delete."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from typing import Any

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx  # noqa: F401


def _default_user() -> str:
    return os.environ.get("SEGENGINE_USER") or getpass.getuser()


user_option = click.option(
    "--user", default=_default_user, show_default="$SEGENGINE_USER or the login name", help="Acting user."
)
date_option = click.option("--date", "snapshot_date", type=DATE, default=None, help="Snapshot date YYYY-MM-DD.")
kind_option = click.option("--kind", type=click.Choice(["static", "dynamic"]), default="static", show_default=True)
vis_option = click.option("--visibility", type=click.Choice(["private", "shared"]), default="shared", show_default=True)


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def created_line(name: str, kind: str, audience_id: str, size: int | None, day: dt.date | None) -> str:
    """``created static audience 'vip' (id 1a2b): 1,234 members on 2025-06-30``."""
    head = f"created {kind} audience {name!r} (id {audience_id})"
    if size is None or day is None:
        return f"{head}: no members yet; `segengine audience refresh {name!r} --date YYYY-MM-DD` fills it"
    return f"{head}: {size:,d} member{'s' if size != 1 else ''} on {day.isoformat()}"


def _echo_created(ctx: Context, audience_id: str, user: str) -> None:
    from segengine.audiences import get_audience
    from segengine.audiences.registry import latest_refresh_stats

    aud = get_audience(ctx.spark, ctx.lake, audience_id, user)
    size, day = latest_refresh_stats(ctx.spark, ctx.lake, [aud.audience_id]).get(aud.audience_id, (None, None))
    click.echo(created_line(aud.name, aud.kind, aud.audience_id, size, day))


@cli.group()
def audience() -> None:
    """Saved audiences: static and dynamic, uploads, top-N, set operations, export, sync."""


@audience.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="Audience name (default: the document's name).")
@click.option("--kind", type=click.Choice(["static", "dynamic"]), default=None, help="Default: the document's kind.")
@click.option("--visibility", type=click.Choice(["private", "shared"]), default=None)
@date_option
@user_option
@pass_ctx
def create(
    ctx: Context,
    file: str,
    name: str | None,
    kind: str | None,
    visibility: str | None,
    snapshot_date: dt.date | None,
    user: str,
) -> None:
    """Save a rule-defined audience from a segment FILE (YAML or JSON)."""
    from pathlib import Path

    from segengine.audiences import create_audience
    from segengine.audiences.registry import resolver
    from segengine.rules import compile_segment, parse_segment
    from segengine.rules.parse import load_document

    # The whole document is checked (errors name the file, line and field), and the
    # saved audiences its in_segment names refer to, before any table is created.
    seg = parse_segment(file, max_conditions=ctx.config.rules.max_conditions)
    compile_segment(seg, snapshot_date or dt.date.today(), resolver=resolver(ctx.spark, ctx.lake, user))
    doc, _ = load_document(Path(file).read_text(encoding="utf-8"), file)
    aid = create_audience(
        ctx.spark,
        ctx.lake,
        ctx.config,
        name or doc.get("name") or os.path.splitext(os.path.basename(file))[0],
        user,
        kind or doc.get("kind", "dynamic"),
        "rules",
        doc,
        visibility=visibility or doc.get("visibility", "shared"),
        snapshot_date=snapshot_date,
    )
    _echo_created(ctx, aid, user)


@audience.command("list")
@click.option(
    "--sort", "sort_by", type=click.Choice(["updated", "size", "source", "name", "created"]), default="updated"
)
@user_option
@pass_ctx
def list_cmd(ctx: Context, sort_by: str, user: str) -> None:
    """List the audiences you can see (sortable by size, source, updated)."""
    from segengine.audiences import list_audiences

    rows = list_audiences(ctx.spark, ctx.lake, user=user, sort_by=sort_by)
    click.echo(f"{'name':30s} {'kind':8s} {'source':14s} {'size':>10s} {'visibility':10s} {'owner':12s} updated")
    for r in rows:
        size = "-" if r["size"] is None else str(r["size"])
        lock = " [synced]" if r["synced_to"] else ""
        click.echo(
            f"{r['name'][:30]:30s} {r['kind']:8s} {r['source']:14s} {size:>10s} {r['visibility']:10s} "
            f"{r['owner'][:12]:12s} {r['updated_at']}{lock}"
        )


@audience.command("show")
@click.argument("name")
@user_option
@pass_ctx
def show(ctx: Context, name: str, user: str) -> None:
    """Show an audience's registry entry and latest size."""
    from dataclasses import asdict

    from segengine.audiences import get_audience
    from segengine.audiences.registry import latest_refresh_stats

    aud = get_audience(ctx.spark, ctx.lake, name, user)
    data = asdict(aud)
    data["definition"] = aud.definition_dict
    data["size"], data["refreshed_for"] = latest_refresh_stats(ctx.spark, ctx.lake, [aud.audience_id]).get(
        aud.audience_id, (None, None)
    )
    _echo(data)


@audience.command("preview")
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@user_option
@pass_ctx
def preview(ctx: Context, name: str, limit: int, user: str) -> None:
    """Print the first members (by persona_id)."""
    from segengine.audiences import members

    for r in members(ctx.spark, ctx.lake, name, user).orderBy("persona_id").limit(limit).collect():
        click.echo(f"{r['persona_id']}\t{r['since']}")


@audience.command("count")
@click.argument("name")
@user_option
@pass_ctx
def count(ctx: Context, name: str, user: str) -> None:
    """Print the number of members and the date of the membership (its latest refresh)."""
    from segengine.audiences import get_audience, members
    from segengine.audiences.registry import latest_refresh_stats

    aud = get_audience(ctx.spark, ctx.lake, name, user)
    n = members(ctx.spark, ctx.lake, aud.audience_id, user).count()
    _, day = latest_refresh_stats(ctx.spark, ctx.lake, [aud.audience_id]).get(aud.audience_id, (None, None))
    click.echo(count_line(aud.name, n, day))


def count_line(name: str, size: int, day: dt.date | None) -> str:
    """``'vip': 1,234 members on 2025-06-30`` (the date of the latest refresh, if any)."""
    when = f" on {day.isoformat()}" if day is not None else " (never refreshed)"
    return f"{name!r}: {size:,d} member{'s' if size != 1 else ''}{when}"


@audience.command("refresh")
@click.argument("names", nargs=-1)
@click.option("--date", "snapshot_date", type=DATE, required=True, help="Snapshot date YYYY-MM-DD.")
@click.option(
    "--allow-large-change",
    is_flag=True,
    help="Let a refresh remove more than audiences.max_removed_share of an audience's members.",
)
@pass_ctx
def refresh(ctx: Context, names: tuple[str, ...], snapshot_date: dt.date, allow_large_change: bool) -> None:
    """Refresh NAMES (default: every dynamic audience) for a date; prints size/added/removed.

    Refused for a date without features. An audience that would lose more than
    audiences.max_removed_share of its members is left as it is; the others refresh and
    the command exits 2 naming it (recorded in `segengine runs`).
    """
    from segengine.errors import SegengineError
    from segengine.pipeline.daily import refresh_audiences

    try:
        summary = refresh_audiences(
            ctx.spark,
            ctx.lake,
            ctx.config,
            snapshot_date,
            only=list(names) or None,
            allow_large_change=True if allow_large_change else None,
        )
    except SegengineError as exc:
        done = getattr(exc, "summary", None)
        if done:
            _echo(done)  # what was refreshed; the error line follows
        raise
    _echo(summary)


@audience.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", required=True)
@click.option("--column", default=None, help="Id column (default: detected by header and content).")
@click.option("--id-type", type=click.Choice(["email", "phone", "persona_id", "cookie_id"]), default=None)
@click.option("--rejects", default=None, help="CSV of malformed/unmatched rows (default: <file>.rejected.csv).")
@vis_option
@date_option
@user_option
@pass_ctx
def upload(
    ctx: Context,
    file: str,
    name: str,
    column: str | None,
    id_type: str | None,
    rejects: str | None,
    visibility: str,
    snapshot_date: dt.date | None,
    user: str,
) -> None:
    """Create a static audience from a CSV/Excel list of emails, phones, persona or cookie ids."""
    from segengine.audiences import upload_audience

    _echo(
        upload_audience(
            ctx.spark,
            ctx.lake,
            ctx.config,
            file,
            name,
            user,
            visibility,
            column,
            id_type,
            rejects,
            snapshot_date,
        )
    )


@audience.command("top")
@click.argument("source")
@click.option("-n", "n", type=int, required=True, help="How many members.")
@click.option("--by", required=True, help="Catalog attribute to rank by.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="desc", show_default=True)
@click.option("--name", required=True, help="Name of the new audience.")
@click.option("--date", "snapshot_date", type=DATE, required=True)
@kind_option
@vis_option
@user_option
@pass_ctx
def top(
    ctx: Context,
    source: str,
    n: int,
    by: str,
    order: str,
    name: str,
    snapshot_date: dt.date | None,
    kind: str,
    visibility: str,
    user: str,
) -> None:
    """Save the top N of audience SOURCE by an attribute as a new audience."""
    from segengine.audiences import top_n_audience

    aid = top_n_audience(
        ctx.spark, ctx.lake, ctx.config, source, n, by, order, name, user, kind, visibility, snapshot_date
    )
    _echo_created(ctx, aid, user)


@audience.command("combine")
@click.argument("op", type=click.Choice(["intersect", "merge", "exclude"]))
@click.argument("audiences", nargs=-1, required=True)
@click.option("--name", required=True, help="Name of the new audience.")
@kind_option
@vis_option
@date_option
@user_option
@pass_ctx
def combine(
    ctx: Context,
    op: str,
    audiences: tuple[str, ...],
    name: str,
    kind: str,
    visibility: str,
    snapshot_date: dt.date | None,
    user: str,
) -> None:
    """Intersect, merge or exclude AUDIENCES (exclude: first minus the rest) into a new audience."""
    from segengine.audiences import combine_audiences

    aid = combine_audiences(
        ctx.spark, ctx.lake, ctx.config, op, list(audiences), name, user, kind, visibility, snapshot_date
    )
    _echo_created(ctx, aid, user)


@audience.command("export")
@click.argument("name")
@click.argument("path")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True)
@click.option("--columns", default=None, help="Comma-separated catalog attributes.")
@click.option("--single-file", is_flag=True, help="CSV: one file instead of a directory of parts.")
@click.option("--no-recommendations", is_flag=True, help="Leave out product_1..product_10.")
@click.option(
    "--consent",
    type=click.Choice(["email", "sms"]),
    default=None,
    help="Only the members who opted in to this channel (consent_email / consent_sms on --date).",
)
@click.option("--mkdir", is_flag=True, help="Create PATH's folder if it does not exist (otherwise an error).")
@date_option
@user_option
@pass_ctx
def export(
    ctx: Context,
    name: str,
    path: str,
    fmt: str,
    columns: str | None,
    single_file: bool,
    no_recommendations: bool,
    consent: str | None,
    mkdir: bool,
    snapshot_date: dt.date | None,
    user: str,
) -> None:
    """Export an audience to CSV or Excel with chosen columns and recommended products.

    PATH's folder must exist (or give --mkdir). The Excel sheet has a header row with a
    filter, frozen panes, sized columns and number formats.
    """
    from segengine.audiences import export_audience

    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    _echo(
        export_audience(
            ctx.spark,
            ctx.lake,
            ctx.config,
            name,
            path,
            fmt,
            cols,
            user,
            snapshot_date,
            single_file,
            not no_recommendations,
            consent=consent,
            mkdir=mkdir,
        )
    )


@audience.command("sync")
@click.argument("name")
@click.option("--to", "path", default=None, help="File-drop path/URI rewritten on every refresh.")
@click.option("--destination", default=None, help="A registered destination (`segengine destination create`).")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@user_option
@pass_ctx
def sync(ctx: Context, name: str, path: str | None, destination: str | None, fmt: str, user: str) -> None:
    """Sync an audience to a file drop (--to) or a destination (--destination); locks it against edits.

    A destination then receives the joins and leaves since its last sync from
    `segengine destination sync` (or the pipeline's sync_destinations step).
    """
    from segengine.audiences import set_sync
    from segengine.audiences.destinations import attach

    if (path is None) == (destination is None):
        raise click.UsageError("give one of --to PATH or --destination NAME")
    if destination is not None:
        attach(ctx.spark, ctx.lake, name, destination, user)
        click.echo(f"{name}: synced to destination {destination}; locked until `segengine audience unsync`")
        return
    set_sync(ctx.spark, ctx.lake, name, user, path, fmt)
    click.echo(f"{name}: synced to {path} ({fmt}); locked until `segengine audience unsync`")


@audience.command("unsync")
@click.argument("name")
@user_option
@pass_ctx
def unsync(ctx: Context, name: str, user: str) -> None:
    """Turn sync off (unlocks the audience)."""
    from segengine.audiences import set_sync

    set_sync(ctx.spark, ctx.lake, name, user, None)
    click.echo(f"{name}: sync off")


@audience.command("rename")
@click.argument("name")
@click.argument("new_name")
@user_option
@pass_ctx
def rename(ctx: Context, name: str, new_name: str, user: str) -> None:
    """Rename an audience (owner only; not while synced)."""
    from segengine.audiences import update_audience

    update_audience(ctx.spark, ctx.lake, name, user, name=new_name)
    click.echo(new_name)


@audience.command("delete")
@click.argument("name")
@user_option
@pass_ctx
def delete(ctx: Context, name: str, user: str) -> None:
    """Delete an audience (history stays readable by Delta time travel)."""
    from segengine.audiences import delete_audience

    aud = delete_audience(ctx.spark, ctx.lake, name, user)
    click.echo(f"deleted {aud.name} ({aud.audience_id})")


@audience.command("changes")
@click.argument("name")
@click.option("--days", default=30, show_default=True, help="Window ending at --date.")
@click.option("--date", "snapshot_date", type=DATE, required=True)
@click.option("--limit", default=20, show_default=True, help="At most this many personas per list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@user_option
@pass_ctx
def changes(ctx: Context, name: str, days: int, snapshot_date: dt.date, limit: int, as_json: bool, user: str) -> None:
    """Who joined and who left in the last DAYS days up to --date (from the change log), newest first."""
    from segengine.audiences import get_audience
    from segengine.audiences.membership import membership_changes

    aud = get_audience(ctx.spark, ctx.lake, name, user)
    start = snapshot_date - dt.timedelta(days=days)
    got = membership_changes(ctx.lake, aud.audience_id, start, snapshot_date, limit)
    if as_json:
        _echo({"audience": aud.name, "from": start, "to": snapshot_date, **got})
        return
    for line in changes_lines(aud.name, start, snapshot_date, got):
        click.echo(line)


def changes_lines(name: str, start: dt.date, end: dt.date, got: dict[str, Any]) -> list[str]:
    """The text of ``segengine audience changes``: counts, then each list, newest first."""
    lines = [
        f"{name!r} from {start.isoformat()} to {end.isoformat()}: {got['joined']:,d} joined, {got['left']:,d} left"
    ]
    for key in ("joined", "left"):
        ids = got[f"{key}_ids"]
        if not got[key]:
            continue
        shown = f"newest {len(ids)} of {got[key]:,d}" if len(ids) < got[key] else f"{got[key]:,d}"
        lines.append(f"{key} ({shown}):")
        lines.extend(f"  {day.isoformat()}  {persona}" for day, persona in ids)
    return lines


@audience.command("holdout")
@click.argument("name")
@click.option("--share", type=float, required=True, help="Share of members held out, 0-1 (0 turns it off).")
@click.option("--salt", default=None, help="Salt of the hash split (default: kept, or a new random one).")
@date_option
@user_option
@pass_ctx
def holdout(ctx: Context, name: str, share: float, salt: str | None, snapshot_date: dt.date | None, user: str) -> None:
    """Keep a share of an audience out of its exports and syncs (stable hash of persona, audience, salt)."""
    from segengine.audiences.registry import set_holdout

    got = set_holdout(ctx.spark, ctx.lake, name, share, user, salt, snapshot_date)
    click.echo(f"{name}: holdout {got.share:.1%} (salt {got.salt})")


@audience.command("lift")
@click.argument("name")
@click.option("--campaign-date", type=DATE, required=True, help="The day the campaign was sent.")
@click.option("--days", default=30, show_default=True, help="Outcome window after the campaign date.")
@click.option("--bootstrap", default=200, show_default=True, help="Bootstrap replicates.")
@click.option("--confidence", default=0.95, show_default=True)
@user_option
@pass_ctx
def lift(
    ctx: Context, name: str, campaign_date: dt.date, days: int, bootstrap: int, confidence: float, user: str
) -> None:
    """Treated vs holdout conversion, revenue and orders per member, with lift and bootstrap intervals."""
    from segengine.audiences.lift import lift_report

    _echo(lift_report(ctx.spark, ctx.lake, name, campaign_date, days, user, bootstrap, confidence))


@audience.command("mde")
@click.argument("name")
@click.option("--date", "snapshot_date", type=DATE, required=True, help="Plan as of this day.")
@click.option("--days", default=30, show_default=True, help="Window of the base conversion rate.")
@click.option("--share", type=float, default=None, help="Holdout share to plan with (default: the one set).")
@user_option
@pass_ctx
def mde(ctx: Context, name: str, snapshot_date: dt.date, days: int, share: float | None, user: str) -> None:
    """Minimum detectable conversion lift (5% two-sided, 80% power) from size and base rate."""
    from segengine.audiences.lift import estimate_mde

    _echo(estimate_mde(ctx.spark, ctx.lake, name, snapshot_date, days, share, user))


@audience.command("overlap")
@click.argument("names", nargs=-1, required=True)
@click.option("--approx", is_flag=True, help="Estimate from HyperLogLog sketches instead of counting exactly.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@user_option
@pass_ctx
def overlap(ctx: Context, names: tuple[str, ...], approx: bool, as_json: bool, user: str) -> None:
    """Pairwise overlap of two or more audiences: members in both, Jaccard, share of A in B."""
    from segengine.audiences.overlap import audience_overlap

    rows = audience_overlap(ctx.spark, ctx.lake, list(names), user, "approx" if approx else "exact")
    if as_json:
        _echo(rows)
        return
    click.echo(f"{'A':24s} {'B':24s} {'both':>10s} {'jaccard':>8s} {'A in B':>7s}")
    for r in rows:
        if r["a"] == r["b"]:
            continue
        jac = "-" if r["jaccard"] is None else f"{r['jaccard']:.3f}"
        share = "-" if r["share_a_in_b"] is None else f"{r['share_a_in_b']:.1%}"
        click.echo(f"{r['a'][:24]:24s} {r['b'][:24]:24s} {r['both']:>10,d} {jac:>8s} {share:>7s}")


@audience.command("history")
@click.argument("name")
@click.option("--from", "start", type=DATE, default=None, help="First day (default: the beginning).")
@click.option("--to", "end", type=DATE, default=None, help="Last day (default: the latest).")
@user_option
@pass_ctx
def history(ctx: Context, name: str, start: dt.date | None, end: dt.date | None, user: str) -> None:
    """An audience's size, joins and leaves per day (reads only the days asked for)."""
    from segengine.audiences.history import audience_history

    click.echo(f"{'date':10s} {'size':>10s} {'joins':>8s} {'leaves':>8s}")
    for d in audience_history(ctx.spark, ctx.lake, name, start, end, user):
        size = "-" if d["size"] is None else f"{d['size']:,d}"
        click.echo(f"{d['date'].isoformat():10s} {size:>10s} {d['joins']:>8,d} {d['leaves']:>8,d}")


@audience.command("memberships")
@click.argument("persona_id")
@click.option("--from", "start", type=DATE, default=None, help="First day (default: the beginning).")
@click.option("--to", "end", type=DATE, default=None, help="Last day (default: the latest).")
@user_option
@pass_ctx
def memberships(ctx: Context, persona_id: str, start: dt.date | None, end: dt.date | None, user: str) -> None:
    """Every audience a persona entered or left, with dates (the audiences you can see)."""
    from segengine.audiences.history import persona_history

    rows = persona_history(ctx.spark, ctx.lake, persona_id, start, end, user)
    if not rows:
        click.echo(f"{persona_id}: no audience entered or left in that range")
    for r in rows:
        click.echo(f"{r['date'].isoformat()}  {r['change']:7s}  {r['audience']}")
