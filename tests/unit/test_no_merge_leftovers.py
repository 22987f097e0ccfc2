"""No tracked file keeps a merge's conflict markers (one reached benchmarks/RESULTS.md unnoticed)."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.MULTILINE)


def test_no_tracked_text_file_has_conflict_markers():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    leftovers = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".txt", ".po", ".pot", ".toml", ".cfg", ".yml", ".yaml", ".json", "") \
                or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        leftovers += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in MARKER.finditer(text)]
    assert leftovers == [], leftovers
