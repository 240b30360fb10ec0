"""The shipped botocore model of the extension API and extension.py's ACTIONS agree:
the same operations, and each handler reads exactly the input members the model has."""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from pathlib import Path
from typing import Any

import snowvault
from snowvault.interfaces.api import extension

MODEL_DIR = Path(snowvault.DATA_PATH) / "snowvault" / "2026-12-01"


def load(name: str) -> Any:
    return json.loads((MODEL_DIR / name).read_text(encoding="utf-8"))


def params_read(handler: Any) -> set[str]:
    """Member names a handler reads: ``params.get("X")`` or ``f(params, "X")``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(handler)))
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "params"
            and isinstance(first, ast.Constant)
        ):
            names.add(str(first.value))
        elif (
            isinstance(first, ast.Name)
            and first.id == "params"
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
        ):
            names.add(str(node.args[1].value))
    return names


def test_the_model_has_exactly_the_served_actions() -> None:
    assert set(load("service-2.json")["operations"]) == set(extension.ACTIONS)


def test_each_operation_is_a_post_to_its_action_path() -> None:
    model = load("service-2.json")
    assert model["metadata"]["signingName"] == model["metadata"]["endpointPrefix"] == "snowvault"
    for name, op in model["operations"].items():
        assert op["http"] == {
            "method": "POST",
            "requestUri": f"{extension.PREFIX}/{name}",
            "responseCode": 200,
        }


def test_each_handler_reads_the_model_input_members() -> None:
    model = load("service-2.json")
    for name, handler in extension.ACTIONS.items():
        shape = model["shapes"][model["operations"][name]["input"]["shape"]]
        assert params_read(handler) == set(shape["members"]), name
        assert set(shape.get("required", ())) <= set(shape["members"]), name


def test_every_error_the_operations_name_is_a_modelled_exception() -> None:
    model = load("service-2.json")
    named = {e["shape"] for op in model["operations"].values() for e in op["errors"]}
    assert named and all(model["shapes"][e].get("exception") for e in named)


def test_paginators_name_real_members() -> None:
    model = load("service-2.json")
    for name, spec in load("paginators-1.json")["pagination"].items():
        op = model["operations"][name]
        inp = model["shapes"][op["input"]["shape"]]["members"]
        out = model["shapes"][op["output"]["shape"]]["members"]
        assert {spec["input_token"], spec["limit_key"]} <= set(inp), name
        assert {spec["output_token"], spec["result_key"]} <= set(out), name
