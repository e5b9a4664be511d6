"""``matcher db upgrade``, ``matcher load``, ``matcher keys`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from conftest import FIXTURES
from matcher.cli import cli
from matcher.errors import CatalogError, StoreError
from matcher.store import Store


def run(runner, *args):
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result


def test_upgrade_then_load_if_empty_loads_once(runner, any_database_url):
    head = Store(any_database_url).head_revision()
    assert f"→ {head}" in run(runner, "db", "upgrade", "--database", any_database_url).output
    catalog = str(FIXTURES / "catalog.jsonl")
    out = run(runner, "load", "--database", any_database_url, "--if-empty", catalog).output
    assert "170 neu" in out
    out = run(runner, "load", "--database", any_database_url, "--if-empty", catalog).output
    assert "nichts geladen" in out
    store = Store(any_database_url)
    assert store.count_entities() == 170 and store.catalog_version() == 1
    store.close()


def test_load_with_a_bad_line_loads_nothing_and_names_the_line(runner, any_database_url, tmp_path):
    run(runner, "db", "upgrade", "--database", any_database_url)
    lines = (FIXTURES / "catalog.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    bad = json.loads(lines[3])
    bad["lat"] = "nördlich"
    lines[3] = json.dumps(bad, ensure_ascii=False)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(cli, ["load", "--database", any_database_url, str(path)])
    assert isinstance(result.exception, CatalogError)
    message = str(result.exception)   # what `matcher load` prints (exit status 2)
    assert "line=4" in message and "field=lat" in message and "nichts wurde geladen" in message
    store = Store(any_database_url)
    assert store.count_entities() == 0
    store.close()


def test_load_reads_csv_with_lists_and_contact_columns(runner, any_database_url, tmp_path):
    run(runner, "db", "upgrade", "--database", any_database_url)
    path = tmp_path / "katalog.csv"
    path.write_text("id;kind;name;city;lat;lon;topics;languages;contact.email\n"
                    "adv-c1;advisor;Ayşe Demir;Köln;50,94;6,96;Fairer Handel|Türkei;de|tr;ayse@example.org\n",
                    encoding="utf-8-sig")
    assert "1 neu" in run(runner, "load", "--database", any_database_url, str(path)).output
    store = Store(any_database_url)
    ent = store.get_entity("adv-c1")
    assert ent.topics == ["Fairer Handel", "Türkei"] and ent.languages == ["de", "tr"]
    assert ent.lat == 50.94 and ent.contact.email == "ayse@example.org"
    store.close()


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(runner, any_database_url):
    run(runner, "db", "upgrade", "--database", any_database_url)
    result = runner.invoke(cli, ["keys", "create", "--database", any_database_url, "--role", "editor",
                                 "--label", "Büro Köln"])
    secret = result.stdout.strip()
    assert result.exit_code == 0 and secret.startswith("mk_")
    listing = run(runner, "keys", "list", "--database", any_database_url).output
    assert "editor" in listing and "Büro Köln" in listing and secret not in listing
    store = Store(any_database_url)
    key = store.authenticate(secret)
    assert key is not None and key.role == "editor"
    assert "widerrufen" in run(runner, "keys", "revoke", "--database", any_database_url, key.id).output
    assert store.authenticate(secret) is None
    store.close()


def test_keys_create_refuses_an_unknown_role(runner, any_database_url):
    result = runner.invoke(cli, ["keys", "create", "--database", any_database_url, "--role", "root"])
    assert result.exit_code != 0 and "reader" in result.output


def test_commands_on_an_unmigrated_database_say_what_to_run(runner, any_database_url):
    result = runner.invoke(cli, ["keys", "list", "--database", any_database_url])
    assert isinstance(result.exception, StoreError) and "matcher db upgrade" in str(result.exception)
