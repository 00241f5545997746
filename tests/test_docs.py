"""Every relative link and image path in the documentation resolves.

The files checked: README.md, docs/*.md, bench/README.md and every <folder>/README.md. A link
is checked if it is relative (no scheme, not a bare ``#anchor`` to the same file): its file must
exist, and an anchor into a Markdown file must name one of that file's headings (GitHub's slugs).
Links inside code (fenced blocks and backticks) are not links.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    {ROOT / "README.md", ROOT / "bench" / "README.md"}
    | set((ROOT / "docs").glob("*.md"))
    | set(ROOT.glob("*/README.md"))
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def _prose(text: str) -> str:
    return CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """The link and image targets of Markdown text, outside code."""
    return LINK.findall(_prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8")))}


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("#")


def test_the_documentation_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    assert {"README.md", "bench/README.md", "docs/method.md", "docs/findings.md"} <= names


def test_links_are_read_from_prose_not_code():
    text = "see [a](docs/a.md) and ![b](x/b.png)\n`[c](c.md)`\n```\n[d](d.md)\n```\n[e](http://e)\n"
    assert links(text) == ["docs/a.md", "x/b.png", "http://e"]
    assert [t for t in links(text) if _relative(t)] == ["docs/a.md", "x/b.png"]


def test_slugs_follow_github():
    assert slug("Fashion-MNIST (60,000 / 10,000 images)") == "fashion-mnist-60000--10000-images"
    assert slug("Per coordinate: calibrated α, per-example tails") == (
        "per-coordinate-calibrated-α-per-example-tails"
    )
    assert slug("Your own noise: `python -m sgnoise.analyse`") == (
        "your-own-noise-python--m-sgnoiseanalyse"
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc: Path):
    broken = []
    for target in filter(_relative, links(doc.read_text(encoding="utf-8"))):
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve()
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading #{anchor} in {file}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_front_page_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move detail into docs/"


def test_the_layout_names_every_module():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout") :].split("\n## ", 1)[0]
    modules = [p for p in (ROOT / "sgnoise").rglob("*.py") if p.name != "__init__.py"]
    assert modules
    missing = [str(p.relative_to(ROOT)) for p in modules if f"{p.name}`" not in layout]
    assert not missing, f"README.md's layout does not name {missing}"


def test_the_front_page_shows_its_figure_and_points_to_the_manual():
    targets = links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert any(t.endswith(".png") for t in targets)
    assert {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")} <= set(targets)


@pytest.mark.parametrize("folder", ["MNIST_size", "FashionMNIST_size"])
def test_a_size_reference_s_readme_says_how_long_it_took_and_at_which_commit(folder):
    # issue #27 asks how long the reference took: MNIST_size/README.md gave the first run's
    # 12 min 28 s and commit c91a245 after make references had remade it at 04a7f8c (99 s)
    made = json.loads((ROOT / folder / "reference" / "results.json").read_text())["provenance"]
    took = dt.datetime.fromisoformat(made["finished"]) - dt.datetime.fromisoformat(made["started"])
    text = " ".join((ROOT / folder / "README.md").read_text(encoding="utf-8").split())
    assert f"took {took.total_seconds():.0f} s" in text
    assert f"at commit {made['git_commit'][:7]}" in text
