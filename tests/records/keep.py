"""Keep a run's record as a test fixture: `python -m tests.records.keep REPORT_DIR [NAME]`.

The record is copied to tests/records/<scenario>/<NAME or profile>/ with its history and samples
gzipped (a few hundred KB at most), so tests/unit can re-judge it without Docker.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPRESSED = ("history.jsonl", "samples.jsonl")
COPIED = ("meta.json", "timeline.jsonl", "summary.json")
LIMIT_BYTES = 600_000


def keep(report_dir: Path, name: str | None = None) -> Path:
    meta = json.loads((report_dir / "meta.json").read_text())
    target = HERE / meta["scenario"] / (name or meta["profile"])
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in COPIED:
        if (report_dir / file).exists():
            shutil.copy2(report_dir / file, target / file)
    for file in COMPRESSED:
        if (report_dir / file).exists():
            (target / f"{file}.gz").write_bytes(gzip.compress((report_dir / file).read_bytes(), 9, mtime=0))
    size = sum(f.stat().st_size for f in target.iterdir())
    if size > LIMIT_BYTES:
        raise SystemExit(f"{target}: {size:,} bytes, over {LIMIT_BYTES:,}: record a shorter run")
    return target


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    kept = keep(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
    print(f"kept {kept} ({sum(f.stat().st_size for f in kept.iterdir()):,} bytes)")
