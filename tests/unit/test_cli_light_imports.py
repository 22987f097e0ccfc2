"""Commands that only read data do not load torch: `inspect` on a 190 MB upload went from 0.77 to 1.09 GB and
from 1.6 to 3.1 s when the CLI's shared helpers started importing the run machinery (models, torch, LightGBM)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["recexp.cli.inspect", "recexp.cli.common", "recexp.outofcore", "recexp.diskbuild"])
def test_reading_modules_do_not_import_torch(module):
    code = f"import sys, {module}; heavy = sorted({{'torch', 'lightgbm'}} & set(sys.modules)); print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]", f"{module} imports {out.strip()}"
