"""Every link from the README, docs/, the code and the notebooks into docs/ or a README heading
resolves to a file and a heading that exist, and code cites the record by heading, not by figure."""

import re

import nbformat
import pytest

from conftest import ROOT

MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
BARE_DOCS_LINK = re.compile(r"(?<![\w/.])((?:\.\./)?(?:docs/[\w-]+\.md|README\.md)(?:#[\w-]+)?)")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path):
    seen, found = {}, set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        base = slug(line.lstrip("#"))
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def texts():
    """(where, folder links are relative to, text) for every place that may link into the docs."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        yield path.relative_to(ROOT), path.parent, path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "bigcats").rglob("*.py")):
        yield path.relative_to(ROOT), ROOT, path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
            yield f"{path.name} cell {number}", path.parent, cell.source


def links():
    for where, folder, text in texts():
        targets = MARKDOWN_LINK.findall(text) + BARE_DOCS_LINK.findall(text)
        for target in dict.fromkeys(targets):
            if not target.startswith(("http://", "https://", "mailto:")):
                yield where, folder, target


def test_there_are_links_to_check():
    found = list(links())
    assert len(found) > 20
    assert any("model-selection.md#" in target for _, _, target in found)


@pytest.mark.parametrize("where, folder, target", list(links()), ids=lambda value: str(value)[:60])
def test_link_resolves(where, folder, target):
    file_part, _, anchor = target.partition("#")
    if file_part:
        # the code names docs/ from the project root; markdown and notebooks link relative to themselves
        candidates = [folder / file_part, ROOT / file_part]
        path = next((p for p in candidates if p.exists()), None)
        assert path is not None, f"{where}: {target} names a file that does not exist"
    else:
        path = ROOT / where if str(where).endswith(".md") else None
        assert path is not None, f"{where}: in-page link {target} outside markdown"
    if anchor:
        assert anchor in anchors(path), f"{where}: {target}: no heading with that anchor in {path.name}"


def test_code_cites_the_record_by_heading():
    """The evidence lives in docs/ under a heading; the code links it (no 'README, round 6')."""
    for where, _, text in texts():
        if str(where).endswith(".md"):
            continue
        assert not re.search(r"README[,:] (round|after round|\")", text), f"{where} cites the README's old record"
