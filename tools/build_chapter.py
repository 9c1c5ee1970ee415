"""Build one chapter as a small stand-alone book, for authors: ``make chapter CH=02_backprop``.

The mini book uses the course's ``_config.yml`` and holds the landing page plus the chapter's
lecture and assignment, so MyST and Sphinx warnings (``-n -W``) show up in seconds, without
executing the rest of the course. Output: ``_build/chapter-<CH>/_build/html``.
"""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(name: str) -> int:
    chapter = ROOT / "chapters" / name
    if not (chapter / "lecture.ipynb").is_file():
        print(f"error: {chapter / 'lecture.ipynb'} does not exist", file=sys.stderr)
        return 2
    book = ROOT / "_build" / f"chapter-{name}"
    if book.exists():
        shutil.rmtree(book / "chapters", ignore_errors=True)
    (book / "chapters").mkdir(parents=True, exist_ok=True)
    for extra in ("_config.yml", "references.bib", "references.md"):
        if (ROOT / extra).exists():
            shutil.copy2(ROOT / extra, book / extra)
    for folder in ("_ext", "images"):  # the local MathJax extension and the logo
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, book / folder, dirs_exist_ok=True)
    shutil.copytree(chapter, book / "chapters" / name)
    sections = "\n".join(f"      - file: chapters/{name}/{p.stem}"
                         for p in sorted(chapter.glob("*.ipynb")) if p.stem != "lecture")
    toc = f"format: jb-book\nroot: intro\nchapters:\n  - file: chapters/{name}/lecture\n"
    if sections:
        toc += "    sections:\n" + sections.replace("      - ", "      - ", 1) + "\n"
    toc += "  - file: references\n"  # the bibliography that {cite:p} points to
    (book / "_toc.yml").write_text(toc)
    # The landing page links to every chapter; in a one-chapter book those links dangle, so -n
    # would flag them: use a plain landing page here.
    (book / "intro.md").write_text(f"# Chapter {name} (author preview)\n")
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.call([str(jb), "build", str(book), "-n", "-W", "--keep-going"])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python tools/build_chapter.py NN_topic", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
