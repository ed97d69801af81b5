"""Copy the benchmark tables into README.md: every block between ``<!-- bench/results/NAME.md -->`` and
``<!-- end bench/results/NAME.md -->`` is replaced by that file, as the bench wrote it in its latest full run, and
the block ``<!-- st-bertapprox defaults -->`` by the defaults table of ``st_bertapprox.config``
(``st-bertapprox defaults``).

    python bench/readme.py           # rewrite README.md
    python bench/readme.py --check   # exit 1 if a block differs from its file (tests/test_readme.py does this too)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- (bench/results/[\w.-]+\.md) -->\n)(.*?)(<!-- end \2 -->)", re.S)
DEFAULTS = re.compile(r"(<!-- st-bertapprox defaults -->\n)(.*?)(<!-- end st-bertapprox defaults -->)", re.S)


def render(readme: str) -> str:
    """README text with every bench block replaced by its file's current contents, and the defaults table."""
    sys.path.insert(0, str(ROOT))
    from st_bertapprox.config import markdown_defaults

    def bench_block(m: re.Match) -> str:
        path = ROOT / m[2]
        if not path.is_file():  # not run yet: keep the block (tests/test_readme.py fails until it is)
            print(f"warning: {m[2]} does not exist; run its bench", file=sys.stderr)
            return m[0]
        return m[1] + path.read_text(encoding="utf-8") + m[4]

    readme = BLOCK.sub(bench_block, readme)
    return DEFAULTS.sub(lambda m: m[1] + markdown_defaults() + "\n" + m[3], readme)


def blocks(readme: str) -> dict[str, str]:
    """{file: the text between its markers} for every bench block in the README."""
    return {m[2]: m[3] for m in BLOCK.finditer(readme)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    path = ROOT / "README.md"
    old = path.read_text(encoding="utf-8")
    new = render(old)
    if args.check:
        stale = old != new or any(not (ROOT / f).is_file() for f in blocks(old))
        print("README tables up to date" if not stale else "stale README tables: run python bench/readme.py")
        sys.exit(1 if stale else 0)
    path.write_text(new, encoding="utf-8")
    print(f"README.md: {len(blocks(new))} bench tables copied from bench/results/")


if __name__ == "__main__":
    main()
