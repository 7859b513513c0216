"""`segengine studio`: the API and browser UI over one warm SparkSession."""

from __future__ import annotations

import click

from segengine.cli.audience import _default_user
from segengine.cli.base import Context, cli, pass_ctx


@cli.command("studio")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless --token).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--user-header",
    default="X-Segengine-User",
    show_default=True,
    help="Header your proxy sets to the acting user's name.",
)
@click.option(
    "--token",
    envvar="SEGENGINE_STUDIO_TOKEN",
    default=None,
    help="Single-user token: every request needs 'Authorization: Bearer TOKEN' (env SEGENGINE_STUDIO_TOKEN).",
)
@click.option(
    "--user",
    default=_default_user,
    show_default="$SEGENGINE_USER or the login name",
    help="Acting user when a request has no user header (always, with --token).",
)
@click.option(
    "--check-seconds",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Look for a newer customer_features snapshot at most this often.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A Host name requests may carry besides the loopback ones (your proxy's public name, if it passes it on).",
)
@pass_ctx
def studio(
    ctx: Context,
    host: str,
    port: int,
    user_header: str,
    token: str | None,
    user: str,
    check_seconds: float,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the studio (API at /api, OpenAPI at /docs, UI at /) until interrupted.

    Refuses a --host other than 127.0.0.1, localhost or ::1 unless --token is set.
    """
    from segengine.studio import StudioSettings, check_bind, create_app, make_server
    from segengine.studio.auth import default_allowed_hosts

    check_bind(host, token)  # before any Spark work
    settings = StudioSettings(
        user_header=user_header,
        token=token,
        default_user=user,
        check_seconds=check_seconds,
        allowed_hosts=default_allowed_hosts(host, allowed_hosts),
    )
    app = create_app(ctx.spark, ctx.lake, ctx.config, settings)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"segengine studio on http://{shown}:{port}/ (acting user header {user_header}; Ctrl-C stops)")
    make_server(app, host, port, token).run()
