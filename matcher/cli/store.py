"""Store commands: ``matcher info``, ``matcher db …``, ``matcher load``, ``matcher keys …``, ``matcher vectors …``.

All of them use the configured store (``MATCHER_DATABASE_URL``, else
``<data dir>/matcher.db``) unless ``--database`` is given.
"""

from __future__ import annotations

import click

from matcher.cli import german
from matcher.cli.common import database_option, decimal, model_option, open_store

__all__ = ["info", "db", "load", "keys", "vectors"]


@german.command()
@database_option
def info(url: str | None) -> None:
    """Wo die Daten liegen: Datenordner, Datenbank, Modell, Referenzdaten."""
    from matcher.settings import confidence_file, data_dir, database_url, fields_file, model_spec, places_file
    from matcher.store import Store

    store = Store(url or database_url())
    click.echo(f"Datenordner:    {data_dir()}  (MATCHER_DATA_DIR)")
    click.echo(f"Datenbank:      {store.location}  (MATCHER_DATABASE_URL)")
    revision = store.schema_revision()
    if revision is None:
        click.echo("                nicht eingerichtet: `matcher db upgrade` ausführen")
    else:
        click.echo(f"                Stand {revision}, {store.count_entities()} Einträge, "
                   f"{store.vectors.count()} gespeicherte Vektoren")
    click.echo(f"Modell:         {model_spec()}  (MATCHER_MODEL)")
    click.echo(f"Orte:           {places_file()}  (MATCHER_PLACES_FILE)")
    click.echo(f"Handlungsfelder: {fields_file()}  (MATCHER_FIELDS_FILE)")
    click.echo(f"Konfidenz:      {confidence_file()}  (MATCHER_CONFIDENCE_FILE)")


@german.group()
def db() -> None:
    """Datenbankschema (alembic-Migrationen)."""


@db.command("upgrade")
@database_option
@german.option("--revision", default="head", show_default=True, help="Ziel-Revision.")
def db_upgrade(url: str | None, revision: str) -> None:
    """Schema anlegen oder auf den neuesten (oder den angegebenen) Stand bringen."""
    from matcher.store import Store

    store = Store(url)
    before = store.schema_revision()
    after = store.upgrade(revision)
    click.echo(f"{store.location}: {before or 'leer'} → {after}")


@db.command("current")
@database_option
def db_current(url: str | None) -> None:
    """Stand des Schemas in der Datenbank und neuester Stand."""
    from matcher.store import Store

    store = Store(url)
    click.echo(f"{store.location}: Stand {store.schema_revision() or 'leer'}, neuester {store.head_revision()}")


@db.command("purge-requests")
@database_option
@german.option("--days", default=None, type=german.FloatRange(min=0, min_open=True), metavar="TAGE",
               help="Anfragetexte älter als so viele Tage löschen (Standard: MATCHER_REQUEST_RETENTION_DAYS, "
                    "sonst 180).")
def db_purge_requests(url: str | None, days: float | None) -> None:
    """Anfragetexte im Protokoll und ihre gespeicherten Vektoren nach Ablauf der Aufbewahrungsfrist löschen.

    Ein laufender Server tut das beim Start und danach stündlich selbst; dieser Befehl
    ist für Installationen ohne dauernd laufenden Server (z. B. täglich per cron).
    Zusammenfassung, gezeigte Einträge und Rückmeldungen bleiben erhalten.
    """
    from matcher.settings import request_retention_days

    days = days if days is not None else request_retention_days()
    purged = open_store(url).purge_requests(days)
    click.echo(f"{purged['requests']} Anfragetexte und {purged['vectors']} Anfragevektoren gelöscht "
               f"(älter als {decimal(days, None)} Tage).")


@db.command("revision")
@database_option
@german.option("-m", "--message", required=True, help="Was die Migration ändert.")
def db_revision(url: str | None, message: str) -> None:
    """(Entwicklung) Neue Migration aus dem Unterschied zwischen den Tabellen in matcher.store und der Datenbank.

    Gegen eine Datenbank auf dem neuesten Stand ausführen, dann die erzeugte
    Datei in matcher/store/migrations/versions lesen und anpassen, bevor sie eingecheckt wird.
    """
    from alembic import command

    store = open_store(url)
    cfg = store.db.alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        script = command.revision(cfg, message=message, autogenerate=True)
    click.echo(f"neue Migration: {getattr(script, 'path', script)}")


@german.command()
@database_option
@german.option("--if-empty", is_flag=True,
               help="Nichts tun, wenn der Katalog schon Einträge der Arten dieser Datei hat (z. B. Förderprogramme).")
@click.argument("file", metavar="DATEI", type=german.ExistingFile())
def load(url: str | None, if_empty: bool, file: str) -> None:
    """Eine Katalogdatei (JSON Lines, JSON-Liste oder CSV) in einer Transaktion laden.

    Vorhandene Einträge mit derselben id werden ersetzt. Ist eine Zeile
    fehlerhaft, wird nichts geladen und jede fehlerhafte Zeile genannt.
    """
    from matcher.domain.catalog_io import read_catalog_file

    store = open_store(url)
    entities = read_catalog_file(file)
    present = sum(store.count_entities(kind) for kind in {e.kind for e in entities}) if if_empty else 0
    if present:
        click.echo(f"{store.location}: Katalog nicht leer ({present} Einträge dieser Arten); nichts geladen.")
        return
    report = store.upsert_entities(entities)
    click.echo(f"{file}: {report.created} neu, {report.updated} ersetzt; Katalogversion {report.catalog_version}")


@german.group()
def keys() -> None:
    """API-Schlüssel: reader (Empfehlungen), editor (Katalog, Rückmeldungen, Kontaktdaten), admin (Löschen)."""


@keys.command("create")
@database_option
@german.option("--role", required=True, type=german.Choice(("reader", "editor", "admin")), help="Rolle des Schlüssels.")
@german.option("--label", default=None, help="Wer oder was den Schlüssel nutzt (erscheint in `keys list`).")
def keys_create(url: str | None, role: str, label: str | None) -> None:
    """Einen Schlüssel anlegen und einmal ausgeben; gespeichert wird nur sein Hash."""
    store = open_store(url)
    key, secret = store.create_key(role, label)
    click.echo(secret)
    click.echo(f"Schlüssel {key.id} ({role}) angelegt. Er wird nur jetzt angezeigt; bitte sicher aufbewahren.",
               err=True)


@keys.command("list")
@database_option
def keys_list(url: str | None) -> None:
    """Schlüssel auflisten (id, Rolle, Bezeichnung, angelegt, widerrufen) – nie die Schlüssel selbst."""
    store = open_store(url)
    for k in store.list_keys():
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-"
        click.echo(f"{k.id}\t{k.role}\t{k.label or '-'}\t{k.created_at.isoformat(timespec='seconds')}\t{revoked}")


@keys.command("revoke")
@database_option
@click.argument("key_id", metavar="ID")
def keys_revoke(url: str | None, key_id: str) -> None:
    """Einen Schlüssel sofort widerrufen (id aus `keys list`)."""
    store = open_store(url)
    store.revoke_key(key_id)
    click.echo(f"Schlüssel {key_id} widerrufen.")


@german.group()
def vectors() -> None:
    """Gespeicherte Vektoren: mitgelieferte Vektoren des Beispielkatalogs ein- und ausspielen."""


@vectors.command("import")
@database_option
@model_option
@german.option("--optional", is_flag=True,
               help="Passt die Datei nicht zum eingestellten Modell, nur warnen (Exit 0): der Server kodiert dann "
                    "selbst.")
@click.argument("file", metavar="DATEI", type=german.ExistingFile())
def vectors_import(url: str | None, model: str | None, optional: bool, file: str) -> None:
    """Vorberechnete Vektoren übernehmen, nachdem Stichproben neu kodiert und verglichen wurden.

    Passen Modell oder Stichproben nicht (anderes Modell, andere Version),
    wird nichts übernommen.
    """
    from matcher.cli.common import error_text
    from matcher.engine.embedding import make_embedder
    from matcher.errors import ValidationError
    from matcher.live.vector_artifact import import_vectors
    from matcher.settings import model_spec, threads

    store = open_store(url)
    try:
        report = import_vectors(file, store, make_embedder(model or model_spec(), threads=threads()))
    except ValidationError as exc:
        if not optional:
            raise
        click.echo(error_text(exc).replace("Fehler:", "Hinweis:", 1) + "\n  Der Server kodiert den Katalog selbst.",
                   err=True)
        return
    if report.checked == 0:
        click.echo(f"{file}: alle {report.present} Vektoren schon vorhanden; nichts zu tun.")
        return
    click.echo(f"{file}: {report.imported} Vektoren übernommen, {report.present} schon vorhanden "
               f"(Modell {report.model_id}; {report.checked} Stichproben neu kodiert, kleinster Kosinus "
               f"{decimal(report.min_cosine, 5)})")


@vectors.command("export")
@database_option
@model_option
@german.option("--catalog", "catalog_file", required=True, type=german.ExistingFile(), metavar="DATEI",
               help="Der Katalog, dessen Vektoren ausgespielt werden (z. B. fixtures/catalog.jsonl).")
@click.argument("file", metavar="DATEI", type=german.WritableFile())
def vectors_export(url: str | None, model: str | None, catalog_file: str, file: str) -> None:
    """Die Vektoren eines Katalogs in eine Datei schreiben (kodiert, was noch fehlt)."""
    from matcher.cli.common import fitted_matcher
    from matcher.live.vector_artifact import export_vectors

    m = fitted_matcher(catalog_file, url, model)
    report = export_vectors(m, file)
    click.echo(f"{file}: {report.exported} Vektoren des Modells {report.model_id}")
