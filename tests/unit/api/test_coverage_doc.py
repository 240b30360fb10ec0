"""docs/api-coverage.md must be what the generator makes from the served handlers."""

from __future__ import annotations

from pathlib import Path

from snowvault.interfaces.api import coverage, extension, handlers

DOC = Path(__file__).resolve().parents[3] / "docs" / "api-coverage.md"
REGENERATE = (
    "python -m snowvault.interfaces.api.coverage "
    "--handlers snowvault.interfaces.api.handlers:implemented "
    "--handlers snowvault=snowvault.interfaces.api.extension:ACTIONS --out docs/api-coverage.md"
)


def served() -> dict[str, frozenset[str]]:
    return coverage.implemented_from(handlers.implemented) | {
        "snowvault": frozenset(extension.ACTIONS)
    }


def test_api_coverage_doc_is_current() -> None:
    expected = coverage.render(served())
    assert DOC.read_text(encoding="utf-8") == expected, f"regenerate it: {REGENERATE}"


def test_every_handler_is_a_model_operation() -> None:
    assert "StartBackupJob" in handlers.ALL and "DeleteBackupVault" in handlers.ALL
    assert "- [x] StartBackupJob" in DOC.read_text(encoding="utf-8")


def test_partial_notes_name_served_operations() -> None:
    assert coverage.stale_notes(served()) == []
    text = DOC.read_text(encoding="utf-8")
    assert "## snowvault" in text and "- [x] RegisterResource" in text
    assert "- [x] CreateGrant (partial: grants give their operations" in text


def test_the_generator_command_writes_the_doc(tmp_path: Path) -> None:
    out = tmp_path / "coverage.md"
    args = [*REGENERATE.split()[3:-1], str(out)]
    assert coverage.main(args) == 0
    assert out.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
