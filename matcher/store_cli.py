"""Store commands: ``matcher db upgrade``, ``matcher load``, ``matcher keys …``.

All of them use ``MATCHER_DATABASE_URL`` (default ``sqlite:///var/matcher.db``)
unless ``--database`` is given.
"""

from __future__ import annotations

import click

from .store import ROLES, Store, database_url

__all__ = ["db", "load", "keys"]

_database_option = click.option(
    "--database", "url", default=None, metavar="URL",
    help="Database URL (default: MATCHER_DATABASE_URL or sqlite:///var/matcher.db).")


def _store(url: str | None) -> Store:
    return Store(url or database_url())


@click.group()
def db() -> None:
    """Database schema (alembic migrations)."""


@db.command("upgrade")
@_database_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(url: str | None, revision: str) -> None:
    """Create or migrate the schema to the newest (or the given) revision."""
    store = _store(url)
    before = store.schema_revision()
    after = store.upgrade(revision)
    click.echo(f"{store!r}: {before or 'leer'} → {after}")


@db.command("current")
@_database_option
def db_current(url: str | None) -> None:
    """Show the schema revision of the database and the newest one."""
    store = _store(url)
    click.echo(f"{store!r}: Stand {store.schema_revision() or 'leer'}, neuester {store.head_revision()}")


@db.command("revision")
@_database_option
@click.option("-m", "--message", required=True, help="What the migration changes.")
def db_revision(url: str | None, message: str) -> None:
    """(Developers) write a new migration from the difference between matcher.store's tables and the database.

    Run it against a database at the newest revision, then read and edit the
    generated file in matcher/migrations/versions before committing it.
    """
    from alembic import command

    store = _store(url)
    store.check_schema()
    cfg = store._alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        script = command.revision(cfg, message=message, autogenerate=True)
    click.echo(f"neue Migration: {getattr(script, 'path', script)}")


@click.command()
@_database_option
@click.option("--if-empty", is_flag=True, help="Do nothing when the catalog already holds entities.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def load(url: str | None, if_empty: bool, file: str) -> None:
    """Load a catalog file (JSON Lines, JSON list or CSV) into the store, in one transaction.

    Existing entities with the same id are replaced. If any line is bad,
    nothing is loaded and every bad line is listed.
    """
    from .catalog_io import read_catalog_file

    store = _store(url)
    store.check_schema()
    if if_empty and store.count_entities() > 0:
        click.echo(f"{store!r}: Katalog nicht leer ({store.count_entities()} Einträge); nichts geladen.")
        return
    report = store.upsert_entities(read_catalog_file(file))
    click.echo(f"{file}: {report.created} neu, {report.updated} ersetzt; Katalogversion {report.catalog_version}")


@click.group()
def keys() -> None:
    """API keys: reader (recommendations), editor (catalog, feedback, contact data), admin (erasure)."""


@keys.command("create")
@_database_option
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--label", default=None, help="Who or what uses the key (shown in `keys list`).")
def keys_create(url: str | None, role: str, label: str | None) -> None:
    """Create a key and print it once; only its hash is stored."""
    store = _store(url)
    store.check_schema()
    key, secret = store.create_key(role, label)
    click.echo(secret)
    click.echo(f"Schlüssel {key.id} ({role}) angelegt. Er wird nur jetzt angezeigt; bitte sicher aufbewahren.",
               err=True)


@keys.command("list")
@_database_option
def keys_list(url: str | None) -> None:
    """List keys (id, role, label, created, revoked) — never the keys themselves."""
    store = _store(url)
    store.check_schema()
    for k in store.list_keys():
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        click.echo(f"{k.id}\t{k.role}\t{k.label or '-'}\t{k.created_at.isoformat(timespec='seconds')}\t{revoked}")


@keys.command("revoke")
@_database_option
@click.argument("key_id")
def keys_revoke(url: str | None, key_id: str) -> None:
    """Revoke a key at once (by the id shown by `keys list`)."""
    store = _store(url)
    store.check_schema()
    store.revoke_key(key_id)
    click.echo(f"Schlüssel {key_id} widerrufen.")
