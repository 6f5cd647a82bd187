"""Error mapping of the OpenStack adapter, on real openstacksdk / keystoneauth exception objects."""

from __future__ import annotations

import json

import pytest
import requests
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from controlplane.backends.openstack.errors import (
    HINT_CREDENTIALS,
    HINT_QUOTA,
    raise_for_response,
    translate_error,
    translated,
)
from controlplane.errors import (
    BackendNotFound,
    BackendPermissionDenied,
    PermanentError,
    TemporaryError,
)

TOKEN = "gAAAAAB-secret-token-value"


def response(status: int, body: dict[str, object] | None = None, **headers: str) -> requests.Response:
    """A real requests.Response as keystoneauth hands it to the SDK, with the token it was sent."""
    resp = requests.Response()
    resp.status_code = status
    resp.reason = "Reason"
    resp.url = "http://127.0.0.1:9696/v2.0/networks/abc"
    resp.headers.update(headers)
    if body is not None:
        resp.headers["Content-Type"] = "application/json"
        resp._content = json.dumps(body).encode()
    else:
        resp._content = b""
    resp.request = requests.Request(
        "DELETE", resp.url, headers={"X-Auth-Token": TOKEN}
    ).prepare()
    return resp


def sdk_error(status: int, message: str = "", **headers: str) -> sdk_exc.SDKException:
    """The exception openstacksdk raises for this response (via its own raise_from_response)."""
    body = {"NeutronError": {"type": "X", "message": message, "detail": ""}} if message else None
    with pytest.raises(sdk_exc.HttpException) as caught:
        sdk_exc.raise_from_response(response(status, body, **headers))
    return caught.value


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "Invalid input for cidr", PermanentError),
        (403, "Policy doesn't allow update_quota to be performed.", BackendPermissionDenied),
        (404, "Network abc could not be found.", BackendNotFound),
        (409, "Unable to complete operation on network abc. One or more ports have an IP "
              "allocation from this subnet.", TemporaryError),
        (412, "Constrained to revision 3", TemporaryError),
        (500, "Request Failed: internal server error", TemporaryError),
        (503, "", TemporaryError),
        (504, "", TemporaryError),
    ],
)
def test_http_status_maps_to_the_backend_error_tree(
    status: int, message: str, expected: type[Exception]
) -> None:
    error = translate_error(sdk_error(status, message), action="delete network abc")

    assert type(error) is expected
    assert error.backend == "openstack"
    assert error.message.startswith(f"delete network abc: HTTP {status}")
    if message:
        assert message in error.message


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "Quota exceeded for cores: Requested 8, but already used 0 of 4 cores"),
        (409, "Quota exceeded for resources: ['network']."),
        (413, "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded"),
    ],
)
def test_over_quota_is_permanent_not_a_permission_problem(status: int, message: str) -> None:
    error = translate_error(sdk_error(status, message), action="create")

    assert type(error) is PermanentError
    assert error.hint == HINT_QUOTA


def test_too_many_requests_is_temporary_and_honours_retry_after() -> None:
    error = translate_error(sdk_error(429, "slow down", **{"Retry-After": "7"}), action="list")

    assert isinstance(error, TemporaryError)
    assert error.delay == 7.0


def test_messages_never_carry_the_token_sent_with_the_request() -> None:
    for status in (400, 401, 403, 404, 409, 500):
        error = translate_error(sdk_error(status, "boom"), action="x")
        assert TOKEN not in str(error) and TOKEN not in (error.hint or "")


def test_keystone_401_is_a_credentials_problem() -> None:
    exc = ksa_exc.Unauthorized(
        message="The request you have made requires authentication.", http_status=401
    )
    error = translate_error(exc, action="authenticate")

    assert type(error) is PermanentError
    assert error.hint == HINT_CREDENTIALS
    assert "401" in error.message


def test_keystoneauth_http_errors_map_like_sdk_ones() -> None:
    assert isinstance(
        translate_error(ksa_exc.Forbidden(http_status=403), action="x"), BackendPermissionDenied
    )
    assert isinstance(translate_error(ksa_exc.ServiceUnavailable(), action="x"), TemporaryError)
    assert isinstance(translate_error(ksa_exc.NotFound(), action="x"), BackendNotFound)


def test_connection_refused_is_temporary_with_a_short_message_and_a_hint() -> None:
    exc = ksa_exc.ConnectFailure(
        "Unable to establish connection to http://127.0.0.1:5000/v3/auth/tokens: "
        "HTTPConnectionPool(host='127.0.0.1', port=5000): Max retries exceeded with url: "
        "/v3/auth/tokens (Caused by NewConnectionError(\"HTTPConnection(host='127.0.0.1', "
        "port=5000): Failed to establish a new connection: [Errno 111] Connection refused\"))"
    )
    error = translate_error(exc, action="find domain 'x'")

    assert isinstance(error, TemporaryError)
    assert error.message == (
        "find domain 'x': cannot reach the cloud: Unable to establish connection to "
        "http://127.0.0.1:5000/v3/auth/tokens: [Errno 111] Connection refused"
    )
    assert error.hint and "scripts/devcloud up" in error.hint


def test_timeouts_are_temporary() -> None:
    assert isinstance(
        translate_error(ksa_exc.ConnectTimeout("timed out"), action="x"), TemporaryError
    )
    assert isinstance(translate_error(requests.ReadTimeout("read"), action="x"), TemporaryError)
    assert isinstance(
        translate_error(sdk_exc.ResourceTimeout("server not ACTIVE in 120 s"), action="x"),
        TemporaryError,
    )


def test_discovery_failure_is_temporary_only_when_the_cause_is_the_network() -> None:
    try:
        try:
            raise ksa_exc.ConnectFailure("Unable to establish connection to http://h:5000/v3")
        except ksa_exc.ConnectFailure as cause:
            raise ksa_exc.DiscoveryFailure("Could not find versioned identity endpoints") from cause
    except ksa_exc.DiscoveryFailure as exc:
        unreachable = exc

    assert isinstance(translate_error(unreachable, action="x"), TemporaryError)
    wrong_url = translate_error(
        ksa_exc.DiscoveryFailure("Could not find versioned identity endpoints"), action="x"
    )
    assert type(wrong_url) is PermanentError
    assert wrong_url.hint and "auth_url" in wrong_url.hint


@pytest.mark.parametrize(
    "exc",
    [
        ksa_exc.SSLError("certificate verify failed"),
        ksa_exc.EndpointNotFound("public endpoint for volumev3 service not found"),
        ksa_exc.MissingRequiredOptions([]),
        sdk_exc.ConfigException("Cloud nope was not found."),
        sdk_exc.ResourceFailure("server went to ERROR"),
        sdk_exc.SDKException("something else"),
    ],
)
def test_configuration_and_other_failures_are_permanent(exc: Exception) -> None:
    error = translate_error(exc, action="x")

    assert type(error) is PermanentError
    assert error.backend == "openstack"


def test_translated_re_raises_as_backend_error_and_keeps_the_cause() -> None:
    original = sdk_error(404, "Router r could not be found.")
    with pytest.raises(BackendNotFound) as caught, translated("get router r"):
        raise original

    assert caught.value.__cause__ is original
    assert caught.value.message.startswith("get router r: HTTP 404")


def test_translated_lets_programming_errors_through() -> None:
    with pytest.raises(KeyError), translated("x"):
        raise KeyError("a bug, not a cloud failure")


def test_raise_for_response_passes_success_and_maps_errors() -> None:
    raise_for_response(response(204), action="grant role")
    with pytest.raises(BackendPermissionDenied) as caught:
        raise_for_response(
            response(403, {"error": {"code": 403, "message": "You are not authorized"}}),
            action="grant role",
        )
    assert "You are not authorized" in caught.value.message
