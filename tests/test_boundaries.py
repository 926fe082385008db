"""The server and the emulator meet only on the wire: neither imports the other."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "dialtone"


def _imports(package: Path) -> set[tuple[Path, str]]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(path, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add((path, node.module))
    return found


def test_roles_do_not_import_each_other():
    pairs = [("server", "dialtone.emulator"), ("emulator", "dialtone.server")]
    present = [(package, forbidden) for package, forbidden in pairs if (SRC / package).is_dir()]
    assert ("server", "dialtone.emulator") in present
    crossing = sorted(
        f"{path.relative_to(SRC)} imports {module}"
        for package, forbidden in present
        for path, module in _imports(SRC / package)
        if module == forbidden or module.startswith(forbidden + ".")
    )
    assert crossing == []


def test_the_webhook_path_does_not_import_twilio_rest():
    # twilio.rest is ~22 MB and slow to import; the server must not load it for webhooks.
    rest = sorted(
        str(p.relative_to(SRC)) for p, m in _imports(SRC / "server") if m.startswith("twilio.rest")
    )
    assert rest == []
