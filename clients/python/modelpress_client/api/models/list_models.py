from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.page_model_read import PageModelRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    label: list[str] | None | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["limit"] = limit

    params["offset"] = offset

    json_label: list[str] | None | Unset
    if isinstance(label, Unset):
        json_label = UNSET
    elif isinstance(label, list):
        json_label = label

    else:
        json_label = label
    params["label"] = json_label

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/models",
        "params": params,
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> PageModelRead | Problem | None:
    if response.status_code == 200:
        response_200 = PageModelRead.from_dict(response.json())

        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[PageModelRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    label: list[str] | None | Unset = UNSET,
) -> Response[PageModelRead | Problem]:
    """List Models

    Args:
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageModelRead | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        offset=offset,
        label=label,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    label: list[str] | None | Unset = UNSET,
) -> PageModelRead | Problem | None:
    """List Models

    Args:
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageModelRead | Problem
    """

    return sync_detailed(
        client=client,
        limit=limit,
        offset=offset,
        label=label,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    label: list[str] | None | Unset = UNSET,
) -> Response[PageModelRead | Problem]:
    """List Models

    Args:
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageModelRead | Problem]
    """

    kwargs = _get_kwargs(
        limit=limit,
        offset=offset,
        label=label,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    label: list[str] | None | Unset = UNSET,
) -> PageModelRead | Problem | None:
    """List Models

    Args:
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageModelRead | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            limit=limit,
            offset=offset,
            label=label,
        )
    ).parsed
