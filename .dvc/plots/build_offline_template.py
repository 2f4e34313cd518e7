"""Write offline.html: DVC's plots page template with vega, vega-lite and vega-embed inlined.

    python .dvc/plots/build_offline_template.py

Fetches the three packages from the npm registry (`npm pack`, the versions DVC's own page
loads from a CDN) and inlines their minified builds, so that `dvc plots show` and `dvc plots
diff` pages draw with no network, even from a copied folder. Their licences go to LICENSES/.
"""

import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = {"vega": "5.20.2", "vega-lite": "5.2.0", "vega-embed": "6.18.2"}  # as dvc_render.vega.VegaRenderer

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def main():
    scripts = []
    (HERE / "LICENSES").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, version in PACKAGES.items():
            subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=folder, check=True,
                           stdout=subprocess.DEVNULL)
            with tarfile.open(Path(folder) / f"{name}-{version}.tgz") as package:
                code = package.extractfile(f"package/build/{name}.min.js").read().decode()
                licence = package.extractfile("package/LICENSE").read()
            (HERE / "LICENSES" / f"{name}-{version}.txt").write_bytes(licence)
            scripts.append(f"    <!-- {name} {version} (BSD-3-Clause, LICENSES/{name}-{version}.txt) -->\n"
                           f"    <script>{code}</script>")
    (HERE / "offline.html").write_text(PAGE.format(scripts="\n".join(scripts)))


if __name__ == "__main__":
    main()
