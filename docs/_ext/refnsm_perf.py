"""The performance page's figure, drawn at build time from the benchmark results (``benchmarks/results/*.md``).

Nothing is typed here: each results file is the table its benchmark script wrote from a measured run
(``make bench``).  Every row with a ``ratio upstream/refnsm`` column becomes one bar, per family, on a log axis.
"""

from __future__ import annotations

import re
from pathlib import Path


def parse_results(results_dir: Path) -> dict:
    """``{family: [(case, size, ratio, goal, met), ...]}`` from every results table that has ratios."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.md")):
        lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
        if len(lines) < 3:
            continue
        head = [c.strip() for c in lines[0].strip("|").split("|")]
        if "ratio upstream/refnsm" not in head:
            continue
        col = {name: i for i, name in enumerate(head)}
        rows = []
        for ln in lines[2:]:
            cells = [c.strip() for c in ln.strip("|").split("|")]
            m = re.match(r"([0-9.]+)x", cells[col["ratio upstream/refnsm"]])
            if not m:
                continue
            g = re.search(r"([0-9.]+)x", cells[col.get("goal", 0)])
            rows.append((cells[col["case"]], cells[col["size"]], float(m.group(1)), float(g.group(1)) if g else None,
                         cells[col["met"]] == "yes" if "met" in col else None))
        if rows:
            out[path.stem] = rows
    return out


def draw(results_dir: Path, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = parse_results(results_dir)
    if not data:
        raise RuntimeError(f"no benchmark results with ratios in {results_dir}; run `make bench`")
    heights = [max(len(rows), 3) * 0.24 + 0.8 for rows in data.values()]
    fig, axes = plt.subplots(len(data), 1, figsize=(11, sum(heights)), gridspec_kw={"height_ratios": heights})
    for ax, (family, rows) in zip(axes, data.items()):
        labels = [f"{case} · {size}" if len(f"{case} · {size}") < 70 else case for case, size, *_ in rows]
        ratios = [r[2] for r in rows]
        colors = ["tab:green" if r[4] else "tab:red" for r in rows]
        y = range(len(rows))
        ax.barh(y, ratios, color=colors)
        for yi, r in zip(y, rows):
            if r[3] is not None:
                ax.plot([r[3], r[3]], [yi - 0.4, yi + 0.4], color="black", lw=1)
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{family}: upstream time / refnsm time (bar), goal (tick); green = goal met", fontsize=9)
    axes[-1].set_xlabel("speed-up of refnsm over the upstream library (log scale; > 1: refnsm faster)")
    fig.tight_layout()
    fig.subplots_adjust(left=0.42)  # room for the case labels
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return out_png
