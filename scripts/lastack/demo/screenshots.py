"""`make screenshots`: the starter dashboards, photographed in a real local Superset.

Starts the hooks tier's Elasticsearch (with logstore_xapi's own statements replayed as a
course, lastack.testing.replay, in the `statements` index)
and Superset on loopback, runs the chart's wiring hook against them, logs in with headless
Chromium (Debian's `chromium`, driven over the DevTools protocol on a pipe, no extra
package) and saves docs/screenshots/<dashboard slug>.png.

    python -m lastack screenshots [--out DIR] [--statements N] [--slug SLUG ...]

The Elasticsearch of the hooks tier (Maven Central's integ-test-zip) has no SQL module. When
`/_sql` does not answer, the charts read a SQLite copy of the documents that Elasticsearch
stores (lastack.testing.sql_standin), and the command says so. Superset, the wiring, the bundle's
dashboards, charts and metrics, and the statements are real. Pass `--no-standin` to photograph
the charts' query errors instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lastack.demo.chromium import BrowserError, Chromium
from lastack.paths import CHART_DIR, REPO_ROOT
from lastack.testing import replay, sql_standin, xapi
from lastack.testing.services import elasticsearch, ingest_node, superset
from lastack.testing.services.hookfiles import bootstrap_config, bootstrap_env, run_hook
from lastack.testing.services.processes import ServiceError, random_secret

HOOKS_DIR = CHART_DIR / "files" / "hooks"
BUNDLE_DIR = CHART_DIR / "files" / "superset"
DEFAULT_OUT = REPO_ROOT / "docs" / "screenshots"
SLUGS = ("la-stack-course", "la-stack-quizzes", "la-stack-learner", "la-stack-delivery")
READER = "la-stack-superset"

# Fills Superset's React login form the way typing would, then submits it.
LOGIN_JS = """
(() => {
  const set = (el, value) => {
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(el, value);
    el.dispatchEvent(new Event('input', {bubbles: true}));
    el.dispatchEvent(new Event('change', {bubbles: true}));
  };
  const user = document.querySelector('input[name=username], #username');
  const pass = document.querySelector('input[name=password], #password, input[type=password]');
  if (!user || !pass) return 'no form';
  set(user, %s); set(pass, %s);
  const button = document.querySelector('button[type=submit], form button');
  if (button) { button.click(); } else { pass.form.submit(); }
  return 'submitted';
})()
"""
# True once every chart holder has left its loading state.
CHARTS_DONE_JS = """
(() => {
  const holders = document.querySelectorAll('.dashboard-component-chart-holder');
  const loading = document.querySelectorAll('.loading, [data-test="loading-indicator"]');
  return holders.length > 0 && loading.length === 0;
})()
"""


def load_statements(es: elasticsearch.ElasticsearchServer, count: int) -> str:
    """Make the statements store as the chart's bootstrap hook does, and bulk-load what
    Moodle sends (the plugin's own statements replayed as a course, or `count` generated
    ones without the shared fixture); say which."""
    with tempfile.TemporaryDirectory(prefix="la-stack-bootstrap-") as tmp:
        config_file = Path(tmp) / "es-bootstrap.json"
        config_file.write_text(json.dumps({**bootstrap_config(), "testIndex": ""}))
        made = run_hook("es_bootstrap", bootstrap_env(
            es.url, elasticsearch.ADMIN_USER, es.admin_password, es.ca_file, config_file))
    if made.returncode != 0:
        raise ServiceError(f"the index bootstrap failed: {made.stderr.strip()}")
    fixture = replay.fixture_statements()
    if fixture is None:
        statements = xapi.generate(count, seed=42)
        said = f"{count} generated statements (the shared fixture is not beside the checkout)"
    else:
        statements = replay.replay(fixture)
        said = (f"{len(statements)} statements: logstore_xapi v5.1.0's own, replayed by 24 "
                "learners over 28 days")
    lines = []
    for statement in statements:
        lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
    status, body = es.request_raw(
        "POST", "/statements/_bulk?refresh=true", "\n".join(lines) + "\n", "application/x-ndjson"
    )
    if status != 200 or body.get("errors"):
        raise ServiceError(f"loading statements failed: {str(body)[:500]}")
    return said


def run_wiring(
    es: elasticsearch.ElasticsearchServer, server: superset.SupersetServer, reader_password: str
) -> str:
    with tempfile.TemporaryDirectory(prefix="la-stack-wiring-") as tmp:
        settings = Path(tmp) / "wiring.json"
        settings.write_text(json.dumps({
            "supersetUrl": server.url, "username": server.admin[0],
            "credentialsSecret": "the local Superset", "databaseName": "Learning analytics",
            "esUrl": es.url, "caFile": str(es.ca_file), "index": "statements", "datasets": [],
            "dashboards": True, "bundleDir": str(BUNDLE_DIR),
        }))  # fmt: skip
        env = {
            "PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8",
            "SETTINGS_FILE": str(settings), "SUPERSET_PASSWORD": server.admin_password,
            "ES_USERNAME": READER, "ES_PASSWORD": reader_password, "DEADLINE_SECONDS": "120",
        }  # fmt: skip
        result = subprocess.run(
            [sys.executable, str(HOOKS_DIR / "superset_wiring.py")],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    if result.returncode != 0:
        raise ServiceError(f"the wiring hook failed: {result.stderr.strip()}")
    return result.stdout


def login(browser: Chromium, server: superset.SupersetServer) -> None:
    browser.goto(server.url + "/login/")
    user, password = server.admin
    outcome = browser.evaluate(LOGIN_JS % (json.dumps(user), json.dumps(password)))
    if outcome != "submitted":
        raise BrowserError(f"Superset's login page has no login form ({outcome})")
    browser.wait_for("!location.pathname.startsWith('/login')", what="logging in", timeout=30)


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--slug", action="append", dest="slugs")
    parser.add_argument(
        "--no-standin", action="store_true", help="keep the charts on Elasticsearch without SQL"
    )
    options = parser.parse_args(args)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        print("lastack screenshots: Chromium is missing: apt-get install chromium", file=sys.stderr)
        return 1
    options.out.mkdir(parents=True, exist_ok=True)
    reader_password = random_secret()
    users = {READER: elasticsearch.EsUser(reader_password, ["la_stack_statements_reader"])}
    try:
        with elasticsearch.ElasticsearchServer(users=users) as es:
            print(f"Loaded {load_statements(es, options.statements)}")
            standin = not options.no_standin and not sql_standin.elasticsearch_has_sql(es.request)
            with superset.SupersetServer(allow_sqlite=standin) as server, \
                    tempfile.TemporaryDirectory(prefix="la-stack-standin-") as workdir:
                print(run_wiring(es, server, reader_password), end="")
                if standin:
                    with ingest_node.IngestNode() as pipeline:  # course columns, as ECK's has
                        count = len(sql_standin.point_superset_at_copy(
                            es.request, "statements", Path(workdir) / "statements.db",
                            server.url, server.admin, derive=pipeline.run_chart_pipeline))
                    print(f"Elasticsearch has no SQL module here: the charts read a SQLite copy "
                          f"of the {count} stored statements (testing.sql_standin), with the "
                          "course columns of the chart's ingest pipeline "
                          "(lastack.testing.services.ingest_node)")
                browser = Chromium(binary)
                try:
                    login(browser, server)
                    for slug in options.slugs or SLUGS:
                        url = f"{server.url}/superset/dashboard/{slug}/?standalone=1"
                        browser.goto(url)
                        try:
                            browser.wait_for(CHARTS_DONE_JS, what=f"rendering {slug}")
                        except BrowserError as error:
                            print(f"warning: {error}; saving what rendered", file=sys.stderr)
                        time.sleep(2.0)
                        path = options.out / f"{slug}.png"
                        browser.screenshot(path)
                        print(f"wrote {path}")
                finally:
                    browser.close()
    except RuntimeError as error:  # ServiceError, BrowserError, the stand-in's errors
        print(f"lastack screenshots: {error}", file=sys.stderr)
        return 1
    return 0
