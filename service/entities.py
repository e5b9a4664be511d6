"""``/v1/entities``: the catalog — create, read, replace, delete (and erase), list, bulk import."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from matcher.domain.catalog_io import parse_catalog
from matcher.domain.messages import quoted
from matcher.errors import ValidationError

from .auth import can_see_contact, require_role
from .errors import UnsupportedMediaType
from .models import DeleteQuery, EntityListQuery, EntityOut, EntityPage, ErasureReportOut, ImportQuery, ImportReportOut
from .openapi import documented
from .parsing import parse_args, parse_body, read_body
from .state import get_store

bp = Blueprint("entities", __name__, url_prefix="/v1/entities")

IMPORT_TYPES = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "application/json-lines": "jsonl",
                "text/csv": "csv"}


def entity_json(entity: Any) -> dict[str, Any]:
    """An entity as JSON for the current caller: contact data only for editor/admin keys."""
    exclude = None if can_see_contact() else {"contact"}
    return entity.model_dump(mode="json", exclude_none=True, exclude=exclude)


@bp.get("")
@documented("Katalog auflisten (Filter: kind, city, topic; Seiten: limit, offset)", query=EntityListQuery,
            responses={200: EntityPage})
def list_entities() -> ResponseReturnValue:
    q = parse_args(EntityListQuery)
    items, total = get_store().list_entities(q.kind, q.city, q.topic, limit=q.limit, offset=q.offset)
    return jsonify({"items": [entity_json(e) for e in items], "total": total, "limit": q.limit, "offset": q.offset})


@bp.post("")
@documented("Eintrag anlegen", body=EntityOut, responses={201: EntityOut})
def create_entity() -> ResponseReturnValue:
    entity = parse_body(EntityOut).root
    version = get_store().create_entity(entity)
    headers = {"Location": url_for(".get_entity", entity_id=entity.id), "X-Catalog-Version": str(version)}
    return jsonify(entity_json(entity)), 201, headers


@bp.get("/<entity_id:entity_id>")
@documented("Eintrag lesen", responses={200: EntityOut})
def get_entity(entity_id: str) -> ResponseReturnValue:
    return jsonify(entity_json(get_store().get_entity(entity_id)))


@bp.put("/<entity_id:entity_id>")
@documented("Eintrag als Ganzes ersetzen", body=EntityOut, responses={200: EntityOut},
            description="Die id im Inhalt muss die der Adresse sein (sonst 422).")
def replace_entity(entity_id: str) -> ResponseReturnValue:
    entity = parse_body(EntityOut).root
    if entity.id != entity_id:
        raise ValidationError(f"Die id im Inhalt ({quoted(entity.id)}) passt nicht zur Adresse ({quoted(entity_id)})",
                              [{"field": "id", "value": entity.id}])
    version = get_store().replace_entity(entity)
    return jsonify(entity_json(entity)), 200, {"X-Catalog-Version": str(version)}


@bp.delete("/<entity_id:entity_id>")
@documented("Eintrag löschen; mit erase=true auch Rückmeldungen und Protokollbezüge (DSGVO Art. 17, admin)",
            query=DeleteQuery, responses={200: ErasureReportOut, 204: None})
def delete_entity(entity_id: str) -> ResponseReturnValue:
    args = parse_args(DeleteQuery)
    if args.erase:
        require_role("admin")
    report = get_store().delete_entity(entity_id, erase=args.erase)
    if args.erase:
        return jsonify(ErasureReportOut(**report).model_dump(mode="json"))
    return "", 204, {"X-Catalog-Version": str(report["catalog_version"])}


@bp.post("/import")
@documented("Massenimport (JSON Lines oder CSV) in einer Transaktion: alles oder nichts",
            description="Eine fehlerhafte Zeile verhindert den ganzen Import; die Antwort (422) nennt jede "
                        "fehlerhafte Zeile mit Feld und Grund. Vorhandene ids werden ersetzt.",
            query=ImportQuery,
            body_content={"application/x-ndjson": {"type": "string"}, "text/csv": {"type": "string"}},
            responses={200: ImportReportOut})
def import_entities() -> ResponseReturnValue:
    fmt = parse_args(ImportQuery).format or IMPORT_TYPES.get(request.mimetype)
    if fmt is None:
        raise UnsupportedMediaType("Bitte JSON Lines (Content-Type: application/x-ndjson) oder CSV (text/csv) senden",
                                   [{"field": "Content-Type", "value": request.content_type}])
    entities = parse_catalog(read_body(current_app.config["MAX_IMPORT_BYTES"]), fmt)
    report = get_store().upsert_entities(entities)
    return jsonify(ImportReportOut(imported=report.imported, created=report.created, updated=report.updated,
                                   catalog_version=report.catalog_version).model_dump())
