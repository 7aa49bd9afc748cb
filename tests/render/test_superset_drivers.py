"""The database drivers Superset's bootstrap script installs."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import yaml

from lastack.chart import chart_values
from lastack.paths import CHART_DIR

VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
# The drivers the bootstrap script must install, at the versions it pins (one place).
DRIVER_PINS = chart_values.pip_pins("superset.bootstrapScript")
DRIVERS = {"elasticsearch-dbapi", "elasticsearch", "psycopg2-binary"}
IMAGE = VALUES["superset"]["image"]


class TestSupersetDrivers:
    """The bootstrap script installs the pinned drivers unless the image already has them."""

    def run_bootstrap(self, tmp_path: Path, importable: bool) -> str:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        calls = tmp_path / "calls"
        scripts = {
            "python": f"#!/bin/sh\necho \"python $*\" >> {calls}\n"
                      f"case \"$1\" in -c) exit {0 if importable else 1};; esac\n",
            "uv": f"#!/bin/sh\necho \"uv $*\" >> {calls}\n",
        }
        for name, text in scripts.items():
            path = bin_dir / name
            path.write_text(text)
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
        script = tmp_path / "bootstrap.sh"
        script.write_text(VALUES["superset"]["bootstrapScript"])
        result = subprocess.run(["/bin/sh", "-c", f". {script}; echo sourced"],
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "sourced" in result.stdout, "the script is sourced and must not exit on success"
        return calls.read_text() if calls.exists() else ""

    def test_should_install_the_pinned_drivers(self, tmp_path):
        calls = self.run_bootstrap(tmp_path, importable=False)
        install = next(line for line in calls.splitlines() if line.startswith("uv pip install"))
        for pin in DRIVER_PINS:
            assert pin in install.split()

    def test_should_skip_the_install_when_the_image_has_them(self, tmp_path):
        assert "uv" not in self.run_bootstrap(tmp_path, importable=True)

    def test_should_document_an_image_with_the_same_pins(self):
        readme = (CHART_DIR / "README.md").read_text()
        dockerfile = readme[readme.index("```dockerfile"):]
        dockerfile = dockerfile[:dockerfile.index("```", 3)]
        assert f"FROM {IMAGE['repository']}:{IMAGE['tag']}" in dockerfile
        assert {p.split("==")[0] for p in DRIVER_PINS} == DRIVERS
        for pin in DRIVER_PINS:
            assert pin in dockerfile, pin
        assert re.search(r"^\s*USER superset$", dockerfile, re.MULTILINE)
