"""Security: no secret in the repository, logs or asset metadata; the webserver binds to 127.0.0.1; SQL is built
only from parameters and validated identifiers.

1. Secrets in the repository: `scan_repository` reads every file git would commit (tracked, plus untracked files
   that are not ignored) and reports high-confidence secret patterns (private key blocks, AWS/GitHub/Slack/Google/
   Stripe/OpenAI-style keys, URLs with an inline password) and literal values assigned to secret-named keys
   (`password: …`, `api_key = "…"`) in configuration files and non-test Python. Documented placeholders
   (`{env: X}`, `${X}`, `{{ env_var('X') }}`, `<password>`, …) are allowed; so are the entries of `ALLOWLIST`.
   The scanner is shown to fail on planted secrets in a throw-away git repository.

2. Credentials only through the environment. The platform reads public market data only and needs no exchange
   key: ccxt sends a Binance key on private endpoints only (`binance.sign`), and setting one would make ccxt's
   `load_markets` call the private `sapi/v1/capital/config/getall` (`fetchCurrencies`). So no key mechanism
   exists and the tests prove the negative: no configuration model, resource or asset config has a field that
   could hold a secret, every config model rejects unknown keys (a planted `api_key:` fails to load), the live
   clients carry no credentials, dbt's profile has none. The one real secret, the PostgreSQL password of the
   deployment instance, comes only from `DAGSTER_PG_PASSWORD`: on a real PostgreSQL server (the `postgres`
   fixture of tests/test_deployment.py; skipped without PostgreSQL), a real run records it nowhere (event log,
   materialisation metadata, run record, instance info the UI shows, audit ledger, lakehouse file, every
   PostgreSQL table, stdout/stderr), and a wrong password fails without echoing it.

3. The webserver binds to 127.0.0.1: `make ui` passes `-h 127.0.0.1`, `tsp_cli.ui.start_webserver` does too, and
   the real `dagster-webserver` it starts listens on loopback only and is unreachable on the host's other
   addresses.

4. SQL: `sql_violations_in` parses every module under tsp_platform/, assets/, resources/, tsp_cli/, partitions/ and
   checks the SQL text of every `.execute(` / `.executemany(` / `.sql(` / `.query(` call. Text is trusted when it
   is built only from literals and from the schema (`TABLES[...]`, the `Table` constants of
   tsp_platform.lakehouse.schema, parameters annotated `Table`, and what is derived from them: names, keys,
   columns, DDL, joins of those, placeholder repetitions like `["?"] * len(x)`); anything else interpolated (a
   function argument, an attribute of a context, a call result) is a violation. A function itself named
   `query`/`execute`/`sql` may pass its SQL argument on (`Lakehouse.query`): its callers are checked instead. The checker is shown to fail on planted injections. A dynamic test stores
   injection payloads as symbols, profiles and run ids through the Lakehouse API and reads them back as data.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import polars as pl
import psutil
import pytest
import yaml

from tests.test_deployment import postgres  # noqa: F401  (the throw-away PostgreSQL server fixture)
from tsp_platform.lakehouse import Lakehouse
from tsp_platform.lakehouse.schema import OHLCV, TABLES

ROOT = Path(__file__).resolve().parents[2]


# ==============================================================================================================
# 1. Secrets in the repository
# ==============================================================================================================


class Finding(NamedTuple):
    path: str
    line: int
    rule: str
    text: str  # the matched secret (never printed in full: see `describe`)

    def describe(self) -> str:
        shown = self.text[:4] + "…" if len(self.text) > 4 else "…"
        return f"{self.path}:{self.line}: {self.rule} ({shown}, {len(self.text)} chars)"


HIGH_CONFIDENCE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(pattern))
    for rule, pattern in (
        ("private key block", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
        ("AWS access key id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
        ("AWS secret access key", r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"),
        ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
        ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("Slack webhook", r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"),
        ("Google API key", r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        ("Stripe live key", r"\b[rs]k_live_[0-9A-Za-z]{20,}\b"),
        ("OpenAI/Anthropic-style key", r"\bsk-(?:ant-[a-z0-9]+-|proj-)?[A-Za-z0-9_-]{32,}"),
    )
)
# scheme://user:<password>@host: the password group is checked against the placeholders.
URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@'\"]+:(?P<secret>[^\s@/'\"]+)@")
# A secret-named key, then `:` or `=`, then a quoted literal or (outside Python) the rest of the line.
SECRET_KEY = (r"[A-Za-z0-9_.-]*(?:password|passwd|secret|api[_-]?key|apikey|access[_-]?key|access[_-]?token"
              r"|auth[_-]?token|private[_-]?key|credentials?)[A-Za-z0-9_.-]*|token")
ASSIGNMENT = re.compile(
    rf"""(?ix)(?<![A-Za-z0-9_])(?P<key>{SECRET_KEY})["']?\s*[:=]\s*
        (?:(?P<quote>["'])(?P<quoted>[^"'\n]*)(?P=quote)|(?P<bare>[^\s#"'][^#\n]*))"""
)
PLACEHOLDER = re.compile(
    r"""(?ix)^(?:
        \$\{?[A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\}?      # $VAR, ${VAR}, ${VAR:-default}
        |\{\{.*\}\}                                     # Jinja, e.g. {{ env_var('X') }}
        |\{\s*env\s*:\s*[A-Za-z_][A-Za-z0-9_]*\s*\}     # Dagster's {env: X}
        |\{\s*[A-Za-z_][A-Za-z0-9_.]*\s*\}              # a format field, e.g. {password}
        |<[^<>]+>                                       # <password>
        |\*+|x{3,}|\.\.\.|changeme|placeholder|example|redacted|none|null|true|false|~|\[\]|\{\}
    )$"""
)
GENERIC_SUFFIXES = {".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".env", ".json", ".py", ".properties"}
# Exact (path, matched text) pairs reviewed and documented as non-secrets. Empty: the repository needs none.
ALLOWLIST: dict[tuple[str, str], str] = {}


def is_placeholder(value: str) -> bool:
    value = value.strip().rstrip(",;").strip()
    return len(value) < 3 or bool(PLACEHOLDER.match(value))


def _generic_rule_applies(path: str) -> bool:
    """Literal assignments are checked in configuration files and in Python outside tests/ (test code builds
    throw-away credentials, e.g. the PostgreSQL fixture's random passwords)."""
    suffix = Path(path).suffix.lower()
    name = Path(path).name.lower()
    if suffix == ".py":
        return not (path.startswith("tests/") or "/tests/" in path)
    return suffix in GENERIC_SUFFIXES or name.startswith(".env")


def scan_text(path: str, text: str) -> list[Finding]:
    """Secret findings in one file's text (`path` relative to the repository root, `/`-separated)."""
    findings: list[Finding] = []
    generic = _generic_rule_applies(path)
    python = path.endswith(".py")
    for number, line in enumerate(text.splitlines(), start=1):
        for rule, pattern in HIGH_CONFIDENCE:
            findings += [Finding(path, number, rule, m.group(0)) for m in pattern.finditer(line)]
        for match in URL_CREDENTIALS.finditer(line):
            if not is_placeholder(match["secret"]):
                findings.append(Finding(path, number, "URL with an inline password", match["secret"]))
        if not generic:
            continue
        for match in ASSIGNMENT.finditer(line):
            value = match["quoted"] if match["quote"] else match["bare"]
            if value is None or (python and not match["quote"]):  # Python: only string literals are secrets
                continue
            if not is_placeholder(value):
                findings.append(Finding(path, number, f"literal value for {match['key']!r}", value.strip()))
    return [f for f in findings if (f.path, f.text) not in ALLOWLIST]


def repository_files(root: Path) -> list[str]:
    """What git would commit: tracked files plus untracked ones that no .gitignore excludes."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, check=True, timeout=60).stdout
    return sorted({p for p in out.decode().split("\0") if p})


def scan_repository(root: Path) -> list[Finding]:
    findings = []
    for rel in repository_files(root):
        path = root / rel
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        findings += scan_text(rel, data.decode("utf-8", errors="replace"))
    return findings


def assert_no_secrets(root: Path) -> None:
    findings = scan_repository(root)
    if findings:  # not `assert not findings`: pytest's assertion rewriting would print every secret in full
        pytest.fail("secrets in the repository:\n" + "\n".join(f.describe() for f in findings), pytrace=False)


def test_repository_holds_no_secret():
    files = repository_files(ROOT)
    assert "configs/deploy/dagster.postgres.yaml" in files and "dbt_checks/profiles.yml" in files, "scope too narrow"
    assert_no_secrets(ROOT)


# Planted secrets are assembled at run time so that this file itself never holds one.
PLANTED = {
    "deploy/server.pem": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n",
    "configs/aws.yaml": "region: eu-west-1\naccess_key_id: " + "AKIA" + "Z7QW3ERT5YUI9OPA\n",
    "scripts/release.sh": "curl -H 'Authorization: token " + "ghp_" + "x7Yq2LmN8pR4sT6vW1zA3bC5dE9fG0hJ2kL4\n",
    "tsp_platform/notify.py": "HOOK = '" + "xoxb-" + "2048-1024-q8Ew7rTy6uIo'\n",
    "configs/db.yaml": "database:\n  host: db.internal\n  " + "password" + ": hunter2hunter2\n",
    "tsp_platform/sources/keys.py": "client = ccxt.binance({'apiKey" + "': 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy'})\n",
    "settings.toml": "[binance]\napi_secret = " + "'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j'\n",
    "docs/deploy.md": "export DAGSTER_PG_URL=postgresql://dagster:" + "s3cr3t-Pa55" + "@db:5432/dagster\n",
}
NOT_SECRETS = {
    "configs/deploy.yaml": "postgres_db:\n  password: {env: DAGSTER_PG_PASSWORD}\n  username: ${PGUSER}\n",
    "dbt/profiles.yml": "path: \"{{ env_var('TSP_LAKEHOUSE', '../data/lakehouse.duckdb') }}\"\npassword: \"\"\n",
    "tsp_platform/keys.py": "api_key = os.environ['TSP_API_KEY']\nsecret = load_secret(name)\n",
    "docs/example.md": "postgresql://user:<password>@host:5432/db and postgresql://u:{password}@h/db\n",
    "tests/test_db.py": "connect(password='throwaway-test-password')\n",  # test code: generic rule off
    "configs/app.yaml": "api_key: ~\ntoken: <your token>\naccess_token: ${ACCESS_TOKEN}\n",
}


@pytest.fixture
def planted_repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True, timeout=60)
    (root / ".gitignore").write_text("data/\n")
    for rel, text in {**PLANTED, **NOT_SECRETS, "data/ignored.yaml": "password: not-committed-anyway\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_scanner_fails_on_planted_secrets_and_passes_placeholders(planted_repo):
    findings = scan_repository(planted_repo)
    flagged = {f.path for f in findings}
    assert flagged == set(PLANTED), "\n".join(f.describe() for f in findings)  # (planted values: safe to print)
    by_path = {f.path: f for f in findings}
    assert by_path["configs/db.yaml"].text == "hunter2hunter2" and by_path["configs/db.yaml"].line == 3
    assert by_path["docs/deploy.md"].rule == "URL with an inline password"
    # the repository test's own assertion fails on this tree, and its message never repeats a secret in full
    with pytest.raises(pytest.fail.Exception, match="secrets in the repository") as failed:
        assert_no_secrets(planted_repo)
    assert not [f for f in findings if f.text in str(failed.value)]


def test_an_allowlisted_placeholder_is_not_reported(monkeypatch):
    text = "password: documented-demo-value\n"
    assert [f.text for f in scan_text("configs/demo.yaml", text)] == ["documented-demo-value"]
    monkeypatch.setitem(ALLOWLIST, ("configs/demo.yaml", "documented-demo-value"), "a documented demo value")
    assert scan_text("configs/demo.yaml", text) == []


# ==============================================================================================================
# 2. Credentials only through the environment
# ==============================================================================================================

SECRET_NAME = re.compile(r"(?i)password|passwd|secret|api_?key|apikey|token|credential|private_?key|auth")


def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_no_configuration_model_or_resource_has_a_field_for_a_secret(lakehouse_path):
    """Every pydantic configuration model rejects unknown keys and none names a secret; the Dagster resources
    and every asset/op config schema have no such field either."""
    import importlib
    import pkgutil

    import pydantic

    import tsp_platform
    from assets.definitions import build_definitions
    from resources import resources_for

    for module in pkgutil.walk_packages(tsp_platform.__path__, "tsp_platform."):
        importlib.import_module(module.name)
    models = [m for m in _all_subclasses(pydantic.BaseModel) if m.__module__.startswith("tsp_platform.")]
    assert len(models) > 20, "the configuration models were not found"
    for model in models:
        assert model.model_config.get("extra") == "forbid", f"{model.__qualname__} accepts unknown keys"
        assert not [f for f in model.model_fields if SECRET_NAME.search(f)], model.__qualname__

    resources = resources_for(lakehouse_path)
    fields = {(name, field) for name, res in resources.items() for field in type(res).model_fields}
    assert {f for f in fields if f[0] == "live_sources"} == {("live_sources", "timeout_s"),
                                                              ("live_sources", "max_attempts")}
    assert not [f for f in fields if SECRET_NAME.search(f[1])], fields

    defs = build_definitions(resources)
    nodes, configured = set(), []
    for job in defs.resolve_all_job_defs():
        for node in job.all_node_defs:
            nodes.add(node.name)
            schema = getattr(node, "config_schema", None)
            configured += [(node.name, f) for f in getattr(getattr(schema, "config_type", None), "fields", None) or {}]
    assert len(nodes) > 10 and "ohlcv_history" in nodes
    assert configured == [], "an asset or op takes run config: check that none of it can be a secret"


def _with_key(path: Path, out: Path, insert: dict) -> Path:
    raw = yaml.safe_load(path.read_text())
    for dotted, value in insert.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


@pytest.mark.parametrize("where", ["api_key", "defaults.binance_api_secret", "profiles.binance_spot_ratings.api_key"])
def test_a_secret_written_into_the_manifest_is_refused(tmp_path, where):
    from tsp_platform.config import load_manifest
    from tsp_platform.config.errors import ConfigError
    from tsp_platform.config.manifest import DEFAULT_MANIFEST

    planted = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy"
    manifest = _with_key(DEFAULT_MANIFEST, tmp_path / "manifest.yaml", {where: planted})
    with pytest.raises(ConfigError) as refused:
        load_manifest(manifest)
    assert where.rsplit(".", 1)[-1] in str(refused.value)
    assert planted not in str(refused.value)  # the refusal names the key, never echoes the value


def test_a_secret_written_into_a_scanner_is_refused(tmp_path):
    from tsp_platform.config.errors import ConfigError
    from tsp_platform.config.scanners import SCANNER_DIR, load_scanner

    root = tmp_path / "scanners"
    shutil.copytree(SCANNER_DIR, root)
    _with_key(root / "crypto" / "binance_spot_rating_all_long.yaml", root / "crypto" / "binance_spot_rating_all_long.yaml",
              {"api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy"})
    load_scanner("crypto/binance_spot_rating_all_short", root=root)  # the untouched neighbour still loads
    with pytest.raises(ConfigError, match="api_key"):
        load_scanner("crypto/binance_spot_rating_all_long", root=root)


def test_live_clients_carry_no_credentials():
    from tradingview_screener.query import HEADERS

    from resources import LiveSourcesResource
    from tsp_platform.sources.binance import BinanceOhlcvClient, make_exchange
    from tsp_platform.sources.tradingview import TradingViewScreener

    exchange = make_exchange()
    for credential in ("apiKey", "secret", "password", "uid", "login", "privateKey", "walletAddress", "token"):
        assert not getattr(exchange, credential, None), credential
    assert not exchange.check_required_credentials(False)
    assert not BinanceOhlcvClient(exchange).exchange.apiKey
    screener = TradingViewScreener()
    assert not screener.session.cookies and screener.session.auth is None
    assert not {h.lower() for h in HEADERS} & {"cookie", "authorization", "x-api-key"}
    assert set(LiveSourcesResource.model_fields) == {"timeout_s", "max_attempts"}


def test_deployment_and_dbt_configs_take_secrets_from_the_environment_only():
    deploy = yaml.safe_load((ROOT / "configs" / "deploy" / "dagster.postgres.yaml").read_text())
    postgres_db = deploy["storage"]["postgres"]["postgres_db"]
    assert "postgres_url" not in deploy["storage"]["postgres"]
    for key in ("hostname", "port", "username", "password", "db_name"):
        assert set(postgres_db[key]) == {"env"}, f"postgres_db.{key} must be {{env: VAR}}"
    assert postgres_db["password"] == {"env": "DAGSTER_PG_PASSWORD"}

    profiles = yaml.safe_load((ROOT / "dbt_checks" / "profiles.yml").read_text())
    for output in profiles["tsp_dbt_checks"]["outputs"].values():
        assert output["type"] == "duckdb"
        assert not [k for k in output if SECRET_NAME.search(k) or k in ("user", "pass")], output
        assert "env_var('TSP_LAKEHOUSE'" in output["path"]
    local = yaml.safe_load((ROOT / "configs" / "dagster.yaml").read_text())
    assert "storage" not in local and "postgres" not in str(local)


# -- the one real secret: DAGSTER_PG_PASSWORD on a real PostgreSQL server ---------------------------------------


@pytest.fixture(scope="module")
def pg_env(request):
    """The DAGSTER_PG_* variables of a throw-away PostgreSQL server (the `postgres` fixture imported from
    tests/test_deployment.py: initdb + pg_ctl on 127.0.0.1, a random password; skips without PostgreSQL)."""
    return request.getfixturevalue("postgres")


@pytest.fixture
def pg_home(pg_env, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "configs" / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
    for name, value in pg_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _texts_of_run(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Every event of a run serialised whole (messages, metadata, errors), its run record and materialisations."""
    texts = [dg.serialize_value(entry) for entry in instance.all_logs(run_id)]
    texts += [entry.user_message for entry in instance.all_logs(run_id)]
    texts.append(dg.serialize_value(instance.get_run_by_id(run_id)))
    return texts


def _pg_text_hits(env: dict[str, str], needle: str) -> dict[str, int]:
    """Rows of every table of the instance database whose text form contains `needle`, straight from PostgreSQL."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]),
                            user=env["DAGSTER_PG_USERNAME"], password=env["DAGSTER_PG_PASSWORD"],
                            dbname=env["DAGSTER_PG_DB"])
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
            tables = [name for (name,) in cursor.fetchall()]
            hits = {}
            for table in tables:
                cursor.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE t::text LIKE %s").format(
                    sql.Identifier(table)), [f"%{needle}%"])
                hits[table] = cursor.fetchone()[0]
    finally:
        conn.close()
    assert "runs" in hits and "event_logs" in hits, hits
    return {table: n for table, n in hits.items() if n}


@pytest.mark.slow
def test_postgres_password_only_from_the_environment_and_recorded_nowhere(pg_home, pg_env, tmp_path, capfd):
    from assets.definitions import build_definitions
    from resources import resources_for
    from tests.conftest import DEMO_PARTITIONS
    from tests.test_data_cycle import run_cycle, seed
    from tsp_platform.audit import AuditLedger

    password = pg_env["DAGSTER_PG_PASSWORD"]
    assert password not in (pg_home / "dagster.yaml").read_text()
    lake = Lakehouse(tmp_path / "lake" / "lake.duckdb")
    defs = build_definitions(resources_for(lake.path))
    profile, day = DEMO_PARTITIONS[0]
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"  # the password was really used
        seed(defs, instance)
        result = run_cycle(defs, instance, profile, day)
        assert result.success
        runs = [r.run_id for r in instance.get_runs()]
        assert result.run_id in runs and len(runs) == 2
        texts = [t for run_id in runs for t in _texts_of_run(instance, run_id)]
        materialised = result.get_asset_materialization_events()
        assert materialised and any(e.materialization.metadata for e in materialised)
        texts += [repr(e.materialization.metadata) for e in materialised]
        texts.append(instance.info_str())  # what the UI's "Instance" configuration page shows
        assert "PostgresRunStorage" in instance.info_str()
    texts += AuditLedger(lake).lines()
    assert AuditLedger(lake).lines(), "the run wrote no audit records: nothing was checked"
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]

    assert not [t for t in texts if password in t]
    assert password.encode() not in lake.path.read_bytes()
    for path in [*pg_home.rglob("*"), *lake.path.parent.rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert _pg_text_hits(pg_env, password) == {}


@pytest.mark.slow
def test_a_wrong_postgres_password_fails_without_echoing_it(pg_home, monkeypatch, capfd, caplog):
    """dagster-postgres retries the connection, logging each failure with the driver's error, then raises: neither
    the log lines, the exception chain nor the process output carry the password (the retries' pauses are skipped)."""
    import traceback
    from types import SimpleNamespace

    import dagster_postgres.utils

    wrong = "Wr0ng-" + os.urandom(8).hex()
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", wrong)
    monkeypatch.setattr(dagster_postgres.utils, "time", SimpleNamespace(sleep=lambda seconds: None))
    with pytest.raises(Exception) as failed:
        with dg.DagsterInstance.get():
            pass
    text = "".join(traceback.format_exception(failed.value))
    assert "password authentication failed" in text  # it really was the password that failed
    retries = [r.getMessage() for r in caplog.records if "Retrying failed database connection" in r.getMessage()]
    assert retries and "password authentication failed" in retries[0]
    captured = capfd.readouterr()
    assert not [t for t in [text, *retries, caplog.text, captured.out, captured.err] if wrong in t]


# ==============================================================================================================
# 3. The webserver binds to 127.0.0.1
# ==============================================================================================================


def _make_recipe(target: str) -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", line))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_make_ui_binds_the_webserver_to_loopback():
    (command,) = [line for line in _make_recipe("ui") if "dagster" in line]
    args = command.split()
    assert args[0].endswith("dagster") and args[1] == "dev", command
    assert args[args.index("-h") + 1] == "127.0.0.1", command
    assert "0.0.0.0" not in (ROOT / "Makefile").read_text()


def test_start_webserver_passes_loopback_to_dagster_webserver(monkeypatch, tmp_path):
    from tsp_cli import ui

    launched = []

    class Recorded(Exception):
        pass

    def record(cmd, **kwargs):
        launched.append(cmd)
        raise Recorded

    monkeypatch.setattr(ui.subprocess, "Popen", record)
    monkeypatch.setattr(ui, "_port_in_use", lambda port: False)
    with pytest.raises(Recorded):
        with ui.start_webserver(tmp_path, 3999):
            pass
    (cmd,) = launched
    assert Path(cmd[0]).name == "dagster-webserver"
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1" == ui.HOST
    assert "--host" not in cmd and "0.0.0.0" not in cmd


def _other_addresses() -> list[str]:
    """This host's IPv4 addresses that are not loopback."""
    found: set[str] = set()
    ip = shutil.which("ip")
    if ip:
        out = subprocess.run([ip, "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
        found |= set(re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out))
    try:
        found.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    for addrs in psutil.net_if_addrs().values():
        found |= {a.address for a in addrs if a.family == socket.AF_INET}
    return sorted(a for a in found if not a.startswith("127."))


def _reachable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


@pytest.mark.slow
def test_the_real_webserver_listens_on_loopback_only(tmp_path):
    from tsp_cli import ui

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "configs" / "dagster.yaml", home / "dagster.yaml")
    port = ui.free_port()
    with ui.start_webserver(home, port, {"TSP_LAKEHOUSE": str(tmp_path / "lake.duckdb")}) as proc:
        assert _reachable("127.0.0.1", port)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        listening = [(p.name(), c.laddr) for p in tree for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
        assert ("127.0.0.1", port) in [(a.ip, a.port) for _, a in listening], listening
        # the webserver and its code server listen on loopback addresses only, never on 0.0.0.0 / ::
        assert all(a.ip in ("127.0.0.1", "::1") for _, a in listening), listening
        others = _other_addresses()
        reachable_elsewhere = [a for a in others if _reachable(a, port)]
    assert not reachable_elsewhere, f"the webserver answers on {reachable_elsewhere}"
    if not others:
        pytest.skip("this host has no non-loopback IPv4 address: only the listening sockets were checked")


# ==============================================================================================================
# 4. SQL only with parameters or validated identifiers
# ==============================================================================================================

SQL_METHODS = frozenset({"execute", "executemany", "sql", "query"})
SQL_SOURCE_DIRS = ("tsp_platform", "assets", "resources", "tsp_cli", "partitions")
SCHEMA_MODULE = "tsp_platform.lakehouse.schema"  # every name it exports is a Table, TABLES or a schema constant
NUMERIC_BUILTINS = frozenset({"len", "int", "float", "bool", "round", "abs"})  # their results cannot inject
PASSING_BUILTINS = frozenset({"str", "list", "tuple", "set", "frozenset", "sorted", "reversed", "enumerate", "zip"})
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


class Violation(NamedTuple):
    path: str
    line: int
    code: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}: SQL built from untrusted text: {self.code}"


def _bound_names(target: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(name, the sub-target it sits in) for every name a target binds."""
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            yield node.id, node


def _scope_walk(body: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Nodes of a scope, without descending into nested functions, classes or comprehensions."""
    stack = list(body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (*FUNCTIONS, ast.ClassDef, *COMPREHENSIONS)):
                stack.append(child)
            elif isinstance(child, COMPREHENSIONS):
                stack.append(child.generators[0].iter)  # evaluated in the enclosing scope


class SqlChecker:
    """Decides whether an expression's text comes only from literals and the lakehouse schema."""

    def __init__(self, source: str, path: str):
        self.source = source
        self.path = path
        self.tree = ast.parse(source)
        tree = self.tree
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.bindings: dict[ast.AST, dict[str, list[ast.AST | str]]] = {}
        self.in_progress: set[int] = set()

    # -- bindings ----------------------------------------------------------------------------------------------

    def _scope_bindings(self, scope: ast.AST) -> dict[str, list[ast.AST | str]]:
        """name -> what each binding assigns: an expression (trusted iff it is), or a verdict string."""
        if scope in self.bindings:
            return self.bindings[scope]
        found: dict[str, list[ast.AST | str]] = {}

        def bind(target: ast.AST, value: ast.AST | str) -> None:
            if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
                    and len(target.elts) == len(value.elts):
                for t, v in zip(target.elts, value.elts):
                    bind(t, v)
                return
            for name, _ in _bound_names(target):
                found.setdefault(name, []).append(value)

        if isinstance(scope, FUNCTIONS):
            args = scope.args
            for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                if arg is None:
                    continue
                annotation = ast.unparse(arg.annotation) if arg.annotation is not None else ""
                if annotation.strip("'\"") == "Table":
                    verdict = "trusted"  # a lakehouse Table: its names come from the schema
                elif not isinstance(scope, ast.Lambda) and scope.name in SQL_METHODS:
                    verdict = "trusted"  # a SQL wrapper: every call of it is checked where it is made
                else:
                    verdict = "untrusted"  # text from the caller
                found.setdefault(arg.arg, []).append(verdict)
            body = scope.body if isinstance(scope.body, list) else [scope.body]
        else:
            body = scope.body
        for node in _scope_walk(body):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target, node.value)
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                bind(node.target, node.value)
            elif isinstance(node, ast.NamedExpr):
                bind(node.target, node.value)
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                bind(node.target, node.iter)  # an element of a trusted collection is trusted
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        bind(item.optional_vars, "untrusted")
            elif isinstance(node, ast.ExceptHandler) and node.name:
                found.setdefault(node.name, []).append("untrusted")
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    verdict = "trusted" if node.module == SCHEMA_MODULE else "untrusted"
                    found.setdefault(alias.asname or alias.name, []).append(verdict)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault((alias.asname or alias.name).split(".")[0], []).append("untrusted")
        for node in ast.walk(scope):  # nested definitions bind their names in this scope
            if self._enclosing_scope(node) is scope and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                          ast.ClassDef)):
                found.setdefault(node.name, []).append("untrusted")
        self.bindings[scope] = found
        return found

    def _enclosing_scope(self, node: ast.AST) -> ast.AST:
        parent = self.parents.get(node)
        while parent is not None and not isinstance(parent, (*FUNCTIONS, ast.Module)):
            parent = self.parents.get(parent)
        return parent if parent is not None else self.tree

    def _name_trusted(self, node: ast.Name) -> bool:
        path: set[int] = {id(node)}  # the nodes between `node` and the scope being looked at
        parent = self.parents.get(node)
        while parent is not None:
            if isinstance(parent, COMPREHENSIONS):
                # the innermost generator binding the name, unless the name sits in that generator's own iterable
                for generator in reversed(parent.generators):
                    if node.id in {n for n, _ in _bound_names(generator.target)} and id(generator.iter) not in path:
                        return self.trusted(generator.iter)
            if isinstance(parent, (*FUNCTIONS, ast.Module)):
                bindings = self._scope_bindings(parent).get(node.id)
                if bindings:
                    return all(b == "trusted" if isinstance(b, str) else self.trusted(b) for b in bindings)
            path.add(id(parent))
            parent = self.parents.get(parent)
        return False  # a builtin or an unknown name

    # -- expressions -------------------------------------------------------------------------------------------

    def trusted(self, node: ast.AST) -> bool:
        key = id(node)
        if key in self.in_progress:
            return True  # a cycle (`sql += " AND …"`): the other bindings decide
        self.in_progress.add(key)
        try:
            return self._trusted(node)
        finally:
            self.in_progress.discard(key)

    def _trusted(self, node: ast.AST) -> bool:
        t = self.trusted
        match node:
            case ast.Constant() | ast.Compare():
                return True
            case ast.JoinedStr(values=values):
                return all(t(v) for v in values)
            case ast.FormattedValue(value=value):
                return t(value)
            case ast.BinOp(op=ast.Mult(), left=left, right=right):
                # "?" * n, ["?"] * n: repeating a literal; str * str cannot run, so the other side is a count
                return (t(left) and t(right)) or any(isinstance(s, (ast.Constant, ast.List, ast.Tuple)) and t(s)
                                                     for s in (left, right))
            case ast.BinOp(left=left, right=right):
                return t(left) and t(right)
            case ast.BoolOp(values=values):
                return all(t(v) for v in values)
            case ast.IfExp(body=body, orelse=orelse):
                return t(body) and t(orelse)
            case ast.UnaryOp(op=ast.Not()):
                return True
            case ast.UnaryOp(operand=operand):
                return t(operand)
            case ast.Tuple(elts=elts) | ast.List(elts=elts) | ast.Set(elts=elts):
                return all(t(e) for e in elts)
            case ast.Dict(keys=keys, values=values):
                return all(t(k) for k in keys if k is not None) and all(t(v) for v in values)
            case ast.ListComp(elt=elt) | ast.SetComp(elt=elt) | ast.GeneratorExp(elt=elt):
                return t(elt)
            case ast.DictComp(key=k, value=v):
                return t(k) and t(v)
            case ast.Name():
                return self._name_trusted(node)
            case ast.Attribute(value=value) | ast.Subscript(value=value) | ast.Starred(value=value):
                return t(value)  # a part of trusted data (TABLES[x], table.name, table.key[0]) is trusted
            case ast.Call(func=ast.Name(id=name)) if name in NUMERIC_BUILTINS:
                return True
            case ast.Call(func=ast.Name(id=name), args=args, keywords=keywords) if name in PASSING_BUILTINS:
                return all(t(a) for a in args) and all(t(k.value) for k in keywords)
            case ast.Call(func=ast.Attribute(value=owner), args=args, keywords=keywords):
                # a method of trusted data with trusted arguments: ", ".join(table.key), table.ddl(), "…".format(x)
                return t(owner) and all(t(a) for a in args) and all(t(k.value) for k in keywords)
        return False

    def violations(self) -> list[Violation]:
        found = []
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS):
                continue
            sql = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg in ("sql", "query")), None)
            if sql is None:
                continue  # not a SQL call (e.g. cvxportfolio's `policy.execute(h=…, market_data=…)`)
            if not self.trusted(sql):
                found.append(Violation(self.path, node.lineno, ast.get_source_segment(self.source, node) or ""))
        return found


def sql_violations_in(source: str, path: str = "<snippet>") -> list[Violation]:
    return SqlChecker(source, path).violations()


def sql_call_count(source: str) -> int:
    return sum(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in SQL_METHODS
               and bool(n.args) for n in ast.walk(ast.parse(source)))


def project_modules() -> list[Path]:
    return sorted(p for d in SQL_SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def test_sql_is_built_only_from_parameters_and_schema_identifiers():
    violations, calls = [], 0
    for path in project_modules():
        source = path.read_text()
        violations += sql_violations_in(source, str(path.relative_to(ROOT)))
        calls += sql_call_count(source)
    assert calls >= 20, f"only {calls} SQL calls found: the checker is not looking where the SQL is"
    assert not violations, "\n".join(v.describe() for v in violations)


INJECTABLE = {
    "f-string value": "def f(lake, symbol):\n    return lake.query(f\"SELECT * FROM ohlcv WHERE symbol = '{symbol}'\")\n",
    "f-string table name from the caller": "def f(conn, name):\n    conn.execute(f'DELETE FROM {name}')\n",
    "percent format": "def f(conn, symbol):\n    conn.execute(\"SELECT * FROM ohlcv WHERE symbol = '%s'\" % symbol)\n",
    "str.format": "def f(conn, symbol):\n    conn.execute(\"SELECT * FROM ohlcv WHERE symbol = '{}'\".format(symbol))\n",
    "concatenation": "def f(conn, profile):\n    conn.sql('SELECT * FROM raw_pool WHERE profile = ' + profile)\n",
    "via a variable": (
        "def f(lake, symbols):\n    where = ' OR '.join(f\"symbol = '{s}'\" for s in symbols)\n"
        "    sql = 'SELECT * FROM ohlcv'\n    sql += ' WHERE ' + where\n    return lake.query(sql)\n"
    ),
    "context attribute": "def f(ctx):\n    return ctx.lakehouse.query(f\"SELECT * FROM raw_pool WHERE profile = '{ctx.profile.name}'\")\n",
    "sql text from the caller": "def run(conn, statement):\n    conn.execute(statement)\n",
    "keyword argument": "def f(lake, symbol):\n    lake.query(sql=f\"SELECT '{symbol}'\")\n",
    "call result": "def f(conn, x):\n    conn.execute(build_sql(x))\n",
    "module-level text": "import os\nSQL = 'SELECT ' + os.environ['COLS']\ndef f(conn):\n    conn.execute(SQL)\n",
}
SAFE = {
    "parameters": "def f(lake, symbol):\n    return lake.query('SELECT * FROM ohlcv WHERE symbol = ?', [symbol])\n",
    "schema table name": (
        "from tsp_platform.lakehouse.schema import TABLES\n"
        "def f(lake, table_name, profile):\n    table = TABLES[table_name]\n"
        "    return lake.query(f'SELECT * FROM {table.name} WHERE profile = ? ORDER BY {\", \".join(table.key)}', [profile])\n"
    ),
    "placeholder count": (
        "def f(conn, symbols):\n    marks = ', '.join(['?'] * len(symbols))\n"
        "    conn.execute(f'SELECT * FROM ohlcv WHERE symbol IN ({marks})', symbols)\n"
    ),
    "Table parameter": "def f(conn, table: Table):\n    conn.execute(f'SELECT count(*) FROM {table.name}')\n",
    "schema loop": (
        "from tsp_platform.lakehouse.schema import TABLES\n"
        "def f(conn):\n    for table in TABLES.values():\n        conn.execute(table.ddl())\n"
    ),
    "not SQL": "def f(policy, h):\n    return policy.execute(h=h, t=1)\n",
}


@pytest.mark.parametrize("case", INJECTABLE)
def test_the_sql_checker_flags_planted_injections(case):
    (violation,) = sql_violations_in(INJECTABLE[case])
    assert violation.path == "<snippet>" and violation.code


@pytest.mark.parametrize("case", SAFE)
def test_the_sql_checker_accepts_parameters_and_schema_identifiers(case):
    assert sql_violations_in(SAFE[case]) == []


def test_the_checker_fails_the_project_scan_when_someone_writes_an_injection(tmp_path):
    """The same check over a copy of the real lakehouse module with one injectable read added."""
    store = ROOT / "tsp_platform" / "lakehouse" / "store.py"
    source = store.read_text()
    assert sql_violations_in(source) == []
    planted = source.replace(
        "    def exists(self) -> bool:",
        "    def bars_of(self, symbol: str) -> pl.DataFrame:\n"
        "        return self.query(f\"SELECT * FROM ohlcv WHERE symbol = '{symbol}'\")\n\n"
        "    def exists(self) -> bool:",
    )
    assert planted != source
    (violation,) = sql_violations_in(planted, "tsp_platform/lakehouse/store.py")
    assert "WHERE symbol = '{symbol}'" in violation.code


# -- injection payloads are data --------------------------------------------------------------------------------

PAYLOADS = (
    "X'); DROP TABLE ohlcv; --",
    "' OR '1'='1",
    "\"; DROP TABLE symbols; --",
    "x\\'; DELETE FROM audit_ledger; --",
    "Robert'); DROP TABLE raw_pool;--",
)
EVIL_SYMBOL = "BINANCE:" + PAYLOADS[0]
EVIL_PROFILE = "p' OR '1'='1"
D = date(2024, 6, 30)


def _row(table_name: str, text: str, profile: str) -> pl.DataFrame:
    """One row of `table_name` whose every text column carries `text` (partition columns: `profile`, D)."""
    values = {}
    for name, sql_type in TABLES[table_name].columns:
        base = sql_type.split()[0]
        values[name] = {"VARCHAR": text, "DOUBLE": 1.5, "INTEGER": 3, "DATE": D, "BOOLEAN": False,
                        "TIMESTAMP": dt.datetime(2024, 7, 1, 12)}[base]
    if TABLES[table_name].partition:
        values.update(profile=profile, as_of=D)
    return pl.DataFrame([values], schema=TABLES[table_name].polars_schema)


def _table_names(lake: Lakehouse) -> set[str]:
    names = lake.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'")
    return set(names["table_name"])


def test_injection_payloads_round_trip_as_data_through_the_lakehouse(lakehouse):
    from tsp_platform.audit import AuditLedger
    from tsp_platform.lakehouse.freshness import latest_as_of

    benign = {name: _row(name, "benign", "benign_profile") for name in TABLES}
    evil = {name: _row(name, PAYLOADS[i % len(PAYLOADS)], EVIL_PROFILE) for i, name in enumerate(TABLES)}
    for profile, frames in (("benign_profile", benign), (EVIL_PROFILE, evil)):
        lakehouse.upsert_many({n: f for n, f in frames.items() if not TABLES[n].partition and n != "audit_ledger"})
        lakehouse.replace_partitions(profile, D, {n: f for n, f in frames.items() if TABLES[n].partition})

    # symbols and bars named by a payload, through the same public writes the stages use
    symbol = _row("symbols", "crypto", "").with_columns(symbol=pl.lit(EVIL_SYMBOL), description=pl.lit(PAYLOADS[1]))
    assert lakehouse.upsert("symbols", symbol) == {"inserted": 1, "updated": 0, "unchanged": 0}
    assert lakehouse.upsert("symbols", symbol.with_columns(sector=pl.lit(PAYLOADS[2])))["updated"] == 1
    bars = pl.DataFrame({"symbol": [EVIL_SYMBOL] * 2, "date": [D - dt.timedelta(days=1), D], "open": [1.0, 2.0],
                         "high": [1.0, 2.0], "low": [1.0, 2.0], "close": [1.0, 2.0], "volume": [1.0, 2.0],
                         "source": [PAYLOADS[3]] * 2, "ingested_at": [dt.datetime(2024, 7, 1)] * 2},
                        schema=OHLCV.polars_schema)
    assert lakehouse.upsert("ohlcv", bars)["inserted"] == 2
    ledger = AuditLedger(lakehouse)
    ledger.append(PAYLOADS[4], [("intent", {"step": PAYLOADS[0], "partition": EVIL_PROFILE})], genesis={"x": PAYLOADS[1]})

    # every table still exists and holds exactly what was written
    assert _table_names(lakehouse) >= set(TABLES)
    read = lakehouse.ohlcv([EVIL_SYMBOL], D)
    assert read["symbol"].to_list() == [EVIL_SYMBOL] * 2 and read["close"].to_list() == [1.0, 2.0]
    assert evil["ohlcv"]["symbol"].to_list() == ["' OR '1'='1"]  # the generic payload row of `ohlcv`
    assert lakehouse.ohlcv(["' OR '1'='1"], D)["symbol"].to_list() == ["' OR '1'='1"]  # that row, not all four
    assert lakehouse.read_table("symbols").filter(pl.col("symbol") == EVIL_SYMBOL)["sector"].to_list() == [PAYLOADS[2]]
    for name in TABLES:
        if TABLES[name].partition:
            got = lakehouse.read_partition(name, EVIL_PROFILE, D)
            assert got.equals(evil[name]), name  # the quote in the profile did not widen the WHERE clause
            assert lakehouse.read_partition(name, "benign_profile", D).equals(benign[name]), name
    assert latest_as_of(lakehouse, "raw_pool", EVIL_PROFILE) == D == latest_as_of(lakehouse, "raw_pool", "benign_profile")
    assert latest_as_of(lakehouse, "raw_pool", "' OR ''='") is None
    assert lakehouse.content_hash("raw_pool", EVIL_PROFILE, D) != lakehouse.content_hash("raw_pool", "benign_profile", D)
    assert lakehouse.read_table("ohlcv").height == 2 + 2  # the benign and payload rows, and the two payload bars
    verification = ledger.verify()
    assert verification.ok, verification
    (intent,) = [json.loads(line) for line in ledger.lines() if json.loads(line)["kind"] == "intent"]
    assert (intent["run_id"], intent["body"]["step"], intent["body"]["partition"]) == (PAYLOADS[4], PAYLOADS[0], EVIL_PROFILE)

    # a table name is looked up in the schema, never pasted: an injected name is refused before any SQL runs
    for attempt in ("ohlcv; DROP TABLE symbols", "ohlcv WHERE 1=1 --"):
        with pytest.raises(KeyError):
            lakehouse.read_table(attempt)
        with pytest.raises(KeyError):
            lakehouse.read_partition(attempt, EVIL_PROFILE, D)
        with pytest.raises(KeyError):
            latest_as_of(lakehouse, attempt, EVIL_PROFILE)
    assert _table_names(lakehouse) >= set(TABLES)
    assert lakehouse.read_table("symbols").height == 3
