"""docs/api-coverage.md must be what the generator makes from the served handlers."""

from __future__ import annotations

from pathlib import Path

from snowvault.interfaces.api import coverage, handlers

DOC = Path(__file__).resolve().parents[3] / "docs" / "api-coverage.md"
REGENERATE = (
    "python -m snowvault.interfaces.api.coverage "
    "--handlers snowvault.interfaces.api.handlers:implemented --out docs/api-coverage.md"
)


def test_api_coverage_doc_is_current() -> None:
    expected = coverage.render(coverage.implemented_from(handlers.implemented))
    assert DOC.read_text(encoding="utf-8") == expected, f"regenerate it: {REGENERATE}"


def test_every_handler_is_a_model_operation() -> None:
    assert "StartBackupJob" in handlers.ALL and "DeleteBackupVault" in handlers.ALL
    assert "- [x] StartBackupJob" in DOC.read_text(encoding="utf-8")
