"""The README's settings table is the settings table: every row, as the code has it."""

from __future__ import annotations

import re
from pathlib import Path

from chatzilla.settings import SPECS

README = Path(__file__).resolve().parent.parent / "README.md"


def _rows() -> dict[str, tuple[str, str]]:
    rows = {}
    for line in README.read_text().splitlines():
        match = re.match(r"\| `--([a-z-]+)` \| (.+?) \| (.+?) \|", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_every_setting_is_documented_with_its_variables_and_default():
    rows = _rows()
    assert list(rows) == [spec.name.replace("_", "-") for spec in SPECS]
    for spec in SPECS:
        env, default = rows[spec.name.replace("_", "-")]
        assert env == " / ".join(f"`{var}`" for var in spec.env), spec.name
        shown = ",".join(spec.default) if isinstance(spec.default, tuple) else str(spec.default)
        assert default == (f"`{shown}`" if shown else "(none)"), spec.name


def test_the_two_commands_are_there():
    text = README.read_text()
    assert "make run" in text and "make test" in text


def test_the_layout_table_names_every_module_and_bench_script():
    text = README.read_text()
    layout = text[text.index("## Layout") :]
    layout = layout[: layout.index("\n## ", 1)] if "\n## " in layout[1:] else layout
    root = README.parent
    files = [*(root / "chatzilla").rglob("*.py"), *(root / "bench").glob("*.py")]
    missing = [
        str(path.relative_to(root))
        for path in files
        if path.name != "__init__.py" and f"`{path.name}`" not in layout and f"/{path.name}`" not in layout
    ]
    assert missing == []
