"""A scripted stand-in for :class:`snowvault.interfaces.cli.client.Api` (no network)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snowvault.interfaces.cli.client import Api, Profile

PROFILE = Profile("http://127.0.0.1:9", "us-east-1", "AKTEST", "secret", "123456789012")
ENV = {
    "AWS_ENDPOINT_URL": PROFILE.endpoint,
    "AWS_ACCESS_KEY_ID": PROFILE.access_key_id,
    "AWS_SECRET_ACCESS_KEY": PROFILE.secret_access_key,
    "HOME": "/nonexistent",
}

Answer = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


class FakeApi(Api):
    """Answers from ``answers[operation]`` (a dict, or a function of the params); records calls."""

    def __init__(self, answers: Mapping[str, Answer] | None = None) -> None:
        super().__init__(PROFILE)
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((operation, params))
        answer = self.answers.get(operation, {})
        return answer(params) if callable(answer) else dict(answer)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._answer(operation, params)

    def paginate(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        return list(self._answer(operation, params).get(key, []))

    def ext(self, action: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._answer(action, dict(body or {}))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def params(self, operation: str) -> dict[str, Any]:
        return next(p for name, p in self.calls if name == operation)
