"""schemathesis runs shared by the /api/v1 schema tests: bounded generation, positive then negative
cases per operation, and calls with a token, repeated at objects that exist."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation

DOCUMENT = "/api/v1/openapi.json"


def bounded(max_examples: int) -> settings:
    """Bounded and reproducible: derandomize derives Hypothesis' seed from the test, no example database."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )


def aimed(case: Case, known: dict[str, Any]) -> Case | None:
    """The same input aimed at objects that exist (the token's own), or None if nothing to aim."""
    params = dict(case.path_parameters or {})
    hits = {name: value for name, value in known.items() if name in params}
    if not hits:
        return None
    return case.operation.Case(
        method=case.method, path_parameters={**params, **hits}, headers=case.headers,
        cookies=case.cookies, query=case.query, body=case.body, media_type=case.media_type,
    )


def call_with_token(case: Case, auth: dict[str, str], known: dict[str, Any]) -> None:
    """Call and validate `case` with the token, then the same input aimed at `known` objects."""
    # The token goes into the case, so schemathesis re-validates its headers (a case generated
    # without Authorization is no longer "invalid data" once it carries one), and to the call,
    # so it counts as the caller's real credentials: the auth check then also replays the
    # request without them and with a wrong one, and expects a refusal.
    case.headers = {**(case.headers or {}), **auth}
    case.call_and_validate(headers=auth)
    # Random path values mostly hit "not found"; the same input aimed at the caller's own objects
    # reaches the success bodies too.
    again = aimed(case, known)
    if again is not None:
        again.call_and_validate(headers=auth)


def run_modes(
    operation: APIOperation, check: Callable[[Case], None], failures: list[str], generation: settings
) -> None:
    """Positive then negative generated cases for one operation; a failure is kept, not raised at once."""
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @generation
        @given(case=operation.as_strategy(mode))
        def run(case: Case) -> None:
            check(case)

        try:
            run()
        except Unsatisfiable:
            # Nothing to break: an operation with no body and no constrained parameter has no negative
            # input (GET /trust-list.json, a free-text path value); a positive run that cannot
            # generate anything is still a failure.
            if mode is GenerationMode.POSITIVE:
                failures.append(f"{operation.label}: no positive case could be generated")
        except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
            failures.append(f"{operation.label} ({mode.value} data):\n{exc}")


def failures_of(
    operations: Iterable[APIOperation], check: Callable[[Case], None], generation: settings
) -> list[str]:
    """Every operation's failures, positive and negative, all collected."""
    failures: list[str] = []
    for operation in operations:
        run_modes(operation, check, failures, generation)
    return failures
