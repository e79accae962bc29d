"""Turn the tutorials (jupytext percent scripts, Markdown cells) into sphinx-gallery scripts (reST text blocks).

The tutorials stay notebooks that Jupyter and jupytext open as they are: their text cells are Markdown
(``# %% [markdown]``) with ``$...$`` math.  sphinx-gallery reads reST text blocks, so at build time each
tutorial is converted: headings get underlines, ``$$...$$`` becomes a ``math`` directive, ``$x$`` becomes
``:math:`x```, inline code and links get reST syntax.  The code cells are copied unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

UNDERLINE = {1: "=", 2: "-", 3: "~", 4: "^"}


def _inline(text: str) -> str:
    """Markdown inline syntax to reST: code, math, links; escapes what reST would misread."""
    tokens = []  # (text, is_markup)
    for part in re.split(r"(``[^`]+``|`[^`]+`)", text):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            tokens.append((f"``{part.strip('`')}``", True))
            continue
        for piece in re.split(r"((?<![\\$])\$[^$\n]+?\$(?!\$)|\[[^\]]+\]\([^)]+\))", part):
            if piece.startswith("$") and piece.endswith("$") and len(piece) > 2:
                tokens.append((f":math:`{piece[1:-1].strip()}`", True))
            elif piece.startswith("[") and piece.endswith(")"):
                m = re.match(r"\[([^\]]+)\]\(([^)]+)\)", piece)
                tokens.append((f"`{m.group(1)} <{m.group(2)}>`__", True))
            elif piece:
                tokens.append((piece.replace("*spatial", "\\*spatial"), False))
    out = []
    for k, (tok, markup) in enumerate(tokens):
        out.append(tok)
        nxt = tokens[k + 1][0] if k + 1 < len(tokens) else ""
        if markup and nxt[:1].isalnum():  # reST inline markup must end before a non-word character
            out.append("\\ ")
    return "".join(out)


def _table(rows: list[str]) -> list[str]:
    """A Markdown pipe table as a reST list-table (the first row is the header, the second the separator)."""
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", r.strip().strip("|"))] for r in rows]
    body = [cells[0]] + [c for c in cells[1:] if not all(re.fullmatch(r":?-+:?", x) for x in c)]
    out = ["", ".. list-table::", "   :header-rows: 1", ""]
    for row in body:
        for j, cell in enumerate(row):
            out.append(f"   {'* -' if j == 0 else '  -'} {_inline(cell) or ' '}")
    return out + [""]


def markdown_to_rst(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    in_list = False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        m = re.match(r"^(#{1,4})\s+(.*)$", stripped)
        if m:
            title = _inline(m.group(2).strip())
            out += ["", title, UNDERLINE[len(m.group(1))] * max(len(title), 3), ""]
            i += 1
            continue
        if stripped.startswith("$$"):
            body = stripped[2:]
            block = []
            if body.rstrip().endswith("$$") and len(body.strip()) > 2:
                block.append(body.rstrip()[:-2])
            else:
                if body.strip():
                    block.append(body)
                i += 1
                while i < len(lines) and "$$" not in lines[i]:
                    block.append(lines[i])
                    i += 1
                if i < len(lines):
                    last = lines[i].replace("$$", "")
                    if last.strip():
                        block.append(last)
            out += ["", ".. math::", ""] + [f"   {b.strip()}" for b in block if b.strip()] + [""]
            i += 1
            continue
        if stripped.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += _table(rows)
            continue
        is_item = bool(re.match(r"^\s*([-*]|\d+\.)\s+", line))
        if is_item and not in_list and out and out[-1].strip():
            out.append("")  # reST needs a blank line before a list
        if not is_item and in_list and stripped and not line.startswith("  "):
            out.append("")
        in_list = is_item or (in_list and line.startswith("  ") and bool(stripped))
        out.append(_inline(line))
        i += 1
    return out


def convert(src: Path) -> str:
    """The sphinx-gallery script of one tutorial."""
    text = src.read_text()
    cells = re.split(r"^# %%(.*)$", text, flags=re.M)
    # cells: [preamble, marker1, body1, marker2, body2, ...]
    blocks = []
    for marker, body in zip(cells[1::2], cells[2::2]):
        kind = "markdown" if "[markdown]" in marker else "code"
        blocks.append((kind, body.strip("\n")))
    out = []
    first = True
    for kind, body in blocks:
        if kind == "markdown":
            md = [re.sub(r"^# ?", "", ln) for ln in body.splitlines()]
            rst = markdown_to_rst(md)
            while rst and not rst[0].strip():
                rst.pop(0)
            if first:  # the title block becomes the module docstring sphinx-gallery requires
                body_rst = "\n".join(rst).replace('"""', "'''")
                out.append('r"""\n' + body_rst + '\n"""\n')
            else:
                out.append("# %%\n" + "\n".join(f"# {r}".rstrip() for r in rst) + "\n")
        else:
            if first:
                out.append('r"""\n' + src.stem + "\n" + "=" * len(src.stem) + '\n"""\n')
            out.append("# %%\n" + body + "\n")
        first = False
    return "\n".join(out)


def convert_all(src_dir: Path, dst_dir: Path) -> list[Path]:
    dst_dir.mkdir(parents=True, exist_ok=True)
    (dst_dir / "README.rst").write_text(
        "Tutorials\n=========\n\nOne tutorial per family, written for a student: the math, the code (refnsm's own "
        "hand-derived gradients, no autodiff), a figure and the number it reproduces.  Each page runs the "
        "tutorial in quick mode (``REFNSM_QUICK=1``) while the site builds; the full runs' numbers are in "
        "the README.  Every page can be downloaded as a Jupyter notebook or as a script.\n")
    written = []
    for src in sorted(src_dir.glob("[0-9][0-9]_*.py")):
        dst = dst_dir / src.name
        new = convert(src)
        if not dst.exists() or dst.read_text() != new:  # unchanged files keep their mtime: no re-execution
            dst.write_text(new)
        written.append(dst)
    return written


class FigureScraper:
    """sphinx-gallery image scraper for figures the tutorials save to ``$REFNSM_FIGURES`` and close.

    After each code block, every PNG in the figures folder that is new or changed since the last look is
    copied to the gallery's image path and shown below the block."""

    def __init__(self, figures: Path):
        self.figures = Path(figures)
        self.seen: dict[str, float] = {}

    def __repr__(self):  # sphinx-gallery keys its cache on this
        return f"FigureScraper({self.figures.name})"

    def __call__(self, block, block_vars, gallery_conf):
        import shutil

        from sphinx_gallery.scrapers import figure_rst

        pngs = sorted(self.figures.glob("*.png")) if self.figures.is_dir() else []
        new = [p for p in pngs if self.seen.get(str(p)) != p.stat().st_mtime]
        for p in pngs:
            self.seen[str(p)] = p.stat().st_mtime
        image_names = block_vars["image_path_iterator"]
        paths = []
        for png, dst in zip(new, image_names):
            shutil.copyfile(png, dst)
            paths.append(dst)
        return figure_rst(paths, gallery_conf["src_dir"])
