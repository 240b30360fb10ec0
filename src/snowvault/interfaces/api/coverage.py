"""docs/api-coverage.md: every operation of each served model, implemented or not.

Pure core, thin command line:

    >>> text = render({"kms": {"Encrypt"}})
    >>> "- [x] Encrypt" in text and "- [ ] Decrypt" in text
    True

    python -m snowvault.interfaces.api.coverage \\
        --handlers snowvault.app:API_SERVICES --out docs/api-coverage.md

``--handlers MODULE:ATTR`` names a sequence of ServiceEndpoint objects, or a mapping of
model name to handler table, or a callable returning either.

Depends on the api model only; must not depend on services or other interfaces.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from snowvault.interfaces.api import model


def render(implemented: Mapping[str, Collection[str]]) -> str:
    """Markdown for each model name in ``implemented`` (with its implemented op names)."""
    lines = ["# API coverage", "", "Generated from botocore's service models; do not edit.", ""]
    for name in sorted(implemented):
        lines += _service_section(model.load(name), frozenset(implemented[name]))
    return "\n".join(lines).rstrip() + "\n"


def _service_section(service: model.ServiceModel, done: frozenset[str]) -> list[str]:
    ops = sorted(service.operations)
    count = sum(1 for op in ops if op in done)
    unknown = sorted(done - set(ops))
    if unknown:
        raise ValueError(f"{service.name}: not operations of the model: {unknown}")
    lines = [f"## {service.name}", "", f"{count} of {len(ops)} operations implemented.", ""]
    lines += [f"- [{'x' if op in done else ' '}] {op}" for op in ops]
    return [*lines, ""]


def implemented_from(obj: Any) -> dict[str, frozenset[str]]:
    """Model name -> implemented operations, from endpoints or a mapping of handler tables."""
    if callable(obj) and not isinstance(obj, Mapping):
        obj = obj()
    if isinstance(obj, Mapping):
        return {str(name): frozenset(table) for name, table in obj.items()}
    return {ep.model_name: frozenset(ep.handlers) for ep in obj}


def _load_attr(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--handlers must look like MODULE:ATTR, not {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--handlers", help="MODULE:ATTR of the served endpoints")
    parser.add_argument("--service", action="append", default=[], help="model with no handlers")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    implemented = implemented_from(_load_attr(args.handlers)) if args.handlers else {}
    for name in args.service:
        implemented.setdefault(name, frozenset())
    if not implemented:
        implemented = {"backup": frozenset(), "kms": frozenset()}
    text = render(implemented)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
