"""Rebuild report/offline.html: DVC's plots page with vega, vega-lite and vega-embed inlined.

DVC's own page loads these three from a public CDN, so offline the charts stay blank. The versions are the
ones DVC's renderer asks for (dvc_render/vega.py). Run once when they change; needs `npm` (registry only):

    python report/build_template.py
"""

from __future__ import annotations

import re
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUNDLES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>colorize: DVC plots</title>
{inlined}
<style>
  table { border-spacing: 15px; }
</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def bundle_script(tgz: Path, name: str, version: str) -> str:
    """The package's minified browser build as an inline <script>, without its source-map reference."""
    with tarfile.open(tgz) as archive:
        code = archive.extractfile(f"package/build/{name}.min.js").read().decode("utf-8")
        licence = archive.extractfile("package/LICENSE").read().decode("utf-8")
    (HERE / "LICENSES" / f"{name}.txt").write_text(f"{name}@{version}\n\n{licence}", encoding="utf-8")
    code = re.sub(r"//# sourceMappingURL=\S+\s*$", "", code)
    if "</script" in code or "{plot_divs}" in code:
        raise SystemExit(f"{name}: cannot be inlined as is")
    return f"<!-- {name}@{version}, BSD-3-Clause: report/LICENSES/{name}.txt -->\n<script>{code}</script>"


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        specs = [f"{name}@{version}" for name, version in BUNDLES.items()]
        subprocess.run(["npm", "pack", "--silent", *specs], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        scripts = [bundle_script(Path(scratch) / f"{name}-{version}.tgz", name, version)
                   for name, version in BUNDLES.items()]
    page = PAGE.replace("{inlined}", "\n".join(scripts))
    (HERE / "offline.html").write_text(page, encoding="utf-8")
    print(f"wrote {HERE / 'offline.html'} ({len(page) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
