"""The committed values.schema.json and README.md are what the generators produce."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lastack.chart import docs, schema
from lastack.chart.annotations import parse_values
from lastack.chart.render import CNPG_API, ECK_API, HelmFailedError, render_chart
from lastack.paths import CHART_DIR
from lastack.tools.controlplane_build import CNPG_VERSION


class TestGeneratedFilesAreCurrent:
    """Staleness: `make schema` and `make docs` leave nothing to commit."""

    def test_should_have_a_current_schema(self):
        committed = (CHART_DIR / schema.SCHEMA_FILE).read_text()
        assert committed == schema.generate(CHART_DIR), "values.schema.json is stale: make schema"

    def test_should_have_a_current_readme(self):
        committed = (CHART_DIR / docs.README_FILE).read_text()
        assert committed == docs.generate(CHART_DIR), "README.md is stale: make docs"

    def test_should_pass_both_checks(self, capsys):
        assert schema.main(["--check"]) == 0
        assert docs.main(["--check"]) == 0
        assert capsys.readouterr().err == ""

    def test_should_generate_identically_twice(self):
        assert schema.generate(CHART_DIR) == schema.generate(CHART_DIR)
        assert docs.generate(CHART_DIR) == docs.generate(CHART_DIR)


@pytest.fixture
def chart_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the generator inputs, with both modules pointed at it."""
    chart = tmp_path / "charts" / "la-stack"
    chart.mkdir(parents=True)
    for name in ("Chart.yaml", "values.yaml", docs.TEMPLATE_FILE, schema.SCHEMA_FILE,
                 docs.README_FILE):
        shutil.copyfile(CHART_DIR / name, chart / name)
    for module in (schema, docs):
        monkeypatch.setattr(module, "CHART_DIR", chart)
        monkeypatch.setattr(module, "REPO_ROOT", tmp_path)
    return chart


class TestCheckMode:
    """`--check` fails with one line when a generated file is stale, and writes nothing."""

    @pytest.mark.parametrize(("module", "name"), [(schema, schema.SCHEMA_FILE),
                                                  (docs, docs.README_FILE)])
    def test_should_fail_with_one_line_when_stale(self, chart_copy, capsys, module, name):
        (chart_copy / name).write_text("stale\n")
        assert module.main(["--check"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and name in err
        assert (chart_copy / name).read_text() == "stale\n"

    @pytest.mark.parametrize(("module", "name"), [(schema, schema.SCHEMA_FILE),
                                                  (docs, docs.README_FILE)])
    def test_should_rewrite_a_stale_file(self, chart_copy, module, name):
        (chart_copy / name).write_text("stale\n")
        assert module.main([]) == 0
        assert module.main(["--check"]) == 0

    def test_should_report_a_bad_annotation_with_its_line(self, chart_copy, capsys):
        values = chart_copy / "values.yaml"
        values.write_text(values.read_text() + "# @schema minimun: 1\nextraKey: 1\n")
        line = len(values.read_text().splitlines()) - 1
        assert schema.main(["--check"]) == 1
        err = capsys.readouterr().err
        assert f"values.yaml:{line}:" in err and "minimun" in err


class TestReadmeContent:
    """The README says what the chart and its values are."""

    def test_should_name_the_operator_version_the_preflight_names(self):
        with pytest.raises(HelmFailedError) as err:
            render_chart(api_versions=(CNPG_API,))
        assert f"--version {docs.ECK_OPERATOR_VERSION} " in err.value.stderr
        assert f"--version {docs.ECK_OPERATOR_VERSION} " in docs.generate(CHART_DIR)

    def test_should_name_the_cnpg_manifest_the_preflight_names(self):
        with pytest.raises(HelmFailedError) as err:
            render_chart(api_versions=(ECK_API,))
        manifest = (f"release-{CNPG_VERSION.rsplit('.', 1)[0]}/releases/"
                    f"cnpg-{CNPG_VERSION}.yaml")
        assert manifest in err.value.stderr
        assert manifest in docs.generate(CHART_DIR)

    def test_should_not_html_escape_markdown(self):
        readme = docs.generate(CHART_DIR)
        assert not [e for e in ("&gt;", "&lt;", "&amp;", "&quot;", "&#") if e in readme]

    def test_should_have_a_values_section_per_top_level_key(self):
        readme = docs.generate(CHART_DIR)
        for key in parse_values((CHART_DIR / "values.yaml").read_text()).values:
            assert f"\n### `{key}`\n" in readme, key

    @pytest.mark.parametrize(("value", "expected"), [
        ("", '`""`'), (None, "`null`"), (True, "`true`"), ([], "`[]`"),
        ({"a": 1}, '`{"a": 1}`'), ("a|b", '`"a\\|b"`'), ("x" * 80, f'`"{"x" * 58}…`'),
        ([{"name": "x" * 40}, {"name": "y" * 40}], "`[…2 items]`"),
    ])
    def test_should_shorten_defaults_deterministically(self, value, expected):
        assert docs.format_default(value) == expected
