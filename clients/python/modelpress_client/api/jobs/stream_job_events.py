from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    job_id: str,
    *,
    last_event_id: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(last_event_id, Unset):
        headers["last-event-id"] = last_event_id

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/{job_id}/events".format(
            job_id=quote(str(job_id), safe=""),
        ),
    }

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | Problem | None:
    if response.status_code == 200:
        response_200 = cast(Any, None)
        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    last_event_id: None | str | Unset = UNSET,
) -> Response[Any | Problem]:
    """Server-sent events: state changes and log lines until the job ends

     A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the `Last-Event-ID` of the
    last log line to resume after it. It ends with `event: end` and `{"reason": "key revoked"}` once its
    API key is revoked (checked every `MODELPRESS_EVENT_STREAM_RECHECK_S`). 429 with Retry-After when
    the caller's tenant holds its share of streams (`MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX`), 503 with
    Retry-After when the server holds its maximum.

    Args:
        job_id (str):
        last_event_id (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        last_event_id=last_event_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    last_event_id: None | str | Unset = UNSET,
) -> Any | Problem | None:
    """Server-sent events: state changes and log lines until the job ends

     A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the `Last-Event-ID` of the
    last log line to resume after it. It ends with `event: end` and `{"reason": "key revoked"}` once its
    API key is revoked (checked every `MODELPRESS_EVENT_STREAM_RECHECK_S`). 429 with Retry-After when
    the caller's tenant holds its share of streams (`MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX`), 503 with
    Retry-After when the server holds its maximum.

    Args:
        job_id (str):
        last_event_id (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return sync_detailed(
        job_id=job_id,
        client=client,
        last_event_id=last_event_id,
    ).parsed


async def asyncio_detailed(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    last_event_id: None | str | Unset = UNSET,
) -> Response[Any | Problem]:
    """Server-sent events: state changes and log lines until the job ends

     A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the `Last-Event-ID` of the
    last log line to resume after it. It ends with `event: end` and `{"reason": "key revoked"}` once its
    API key is revoked (checked every `MODELPRESS_EVENT_STREAM_RECHECK_S`). 429 with Retry-After when
    the caller's tenant holds its share of streams (`MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX`), 503 with
    Retry-After when the server holds its maximum.

    Args:
        job_id (str):
        last_event_id (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | Problem]
    """

    kwargs = _get_kwargs(
        job_id=job_id,
        last_event_id=last_event_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    job_id: str,
    *,
    client: AuthenticatedClient | Client,
    last_event_id: None | str | Unset = UNSET,
) -> Any | Problem | None:
    """Server-sent events: state changes and log lines until the job ends

     A stream closes after `MODELPRESS_EVENT_STREAM_MAX_S`; reconnect with the `Last-Event-ID` of the
    last log line to resume after it. It ends with `event: end` and `{"reason": "key revoked"}` once its
    API key is revoked (checked every `MODELPRESS_EVENT_STREAM_RECHECK_S`). 429 with Retry-After when
    the caller's tenant holds its share of streams (`MODELPRESS_EVENT_STREAMS_PER_TENANT_MAX`), 503 with
    Retry-After when the server holds its maximum.

    Args:
        job_id (str):
        last_event_id (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | Problem
    """

    return (
        await asyncio_detailed(
            job_id=job_id,
            client=client,
            last_event_id=last_event_id,
        )
    ).parsed
