from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.job_status import JobStatus
from ...models.page_job_read import PageJobRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: list[JobStatus] | None | Unset = UNSET,
    model_id: None | str | Unset = UNSET,
    parent_id: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    sort: str | Unset = "-created_at",
    min_speedup: float | None | Unset = UNSET,
    min_compression_ratio: float | None | Unset = UNSET,
    min_fidelity_min: float | None | Unset = UNSET,
    max_accuracy_drop: float | None | Unset = UNSET,
    max_latency_p50_ms: float | None | Unset = UNSET,
    max_compressed_bytes: int | None | Unset = UNSET,
    label: list[str] | None | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_status: list[str] | None | Unset
    if isinstance(status, Unset):
        json_status = UNSET
    elif isinstance(status, list):
        json_status = []
        for status_type_0_item_data in status:
            status_type_0_item = status_type_0_item_data.value
            json_status.append(status_type_0_item)

    else:
        json_status = status
    params["status"] = json_status

    json_model_id: None | str | Unset
    if isinstance(model_id, Unset):
        json_model_id = UNSET
    else:
        json_model_id = model_id
    params["model_id"] = json_model_id

    json_parent_id: None | str | Unset
    if isinstance(parent_id, Unset):
        json_parent_id = UNSET
    else:
        json_parent_id = parent_id
    params["parent_id"] = json_parent_id

    params["limit"] = limit

    params["offset"] = offset

    params["sort"] = sort

    json_min_speedup: float | None | Unset
    if isinstance(min_speedup, Unset):
        json_min_speedup = UNSET
    else:
        json_min_speedup = min_speedup
    params["min_speedup"] = json_min_speedup

    json_min_compression_ratio: float | None | Unset
    if isinstance(min_compression_ratio, Unset):
        json_min_compression_ratio = UNSET
    else:
        json_min_compression_ratio = min_compression_ratio
    params["min_compression_ratio"] = json_min_compression_ratio

    json_min_fidelity_min: float | None | Unset
    if isinstance(min_fidelity_min, Unset):
        json_min_fidelity_min = UNSET
    else:
        json_min_fidelity_min = min_fidelity_min
    params["min_fidelity_min"] = json_min_fidelity_min

    json_max_accuracy_drop: float | None | Unset
    if isinstance(max_accuracy_drop, Unset):
        json_max_accuracy_drop = UNSET
    else:
        json_max_accuracy_drop = max_accuracy_drop
    params["max_accuracy_drop"] = json_max_accuracy_drop

    json_max_latency_p50_ms: float | None | Unset
    if isinstance(max_latency_p50_ms, Unset):
        json_max_latency_p50_ms = UNSET
    else:
        json_max_latency_p50_ms = max_latency_p50_ms
    params["max_latency_p50_ms"] = json_max_latency_p50_ms

    json_max_compressed_bytes: int | None | Unset
    if isinstance(max_compressed_bytes, Unset):
        json_max_compressed_bytes = UNSET
    else:
        json_max_compressed_bytes = max_compressed_bytes
    params["max_compressed_bytes"] = json_max_compressed_bytes

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
        "url": "/v1/jobs",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> PageJobRead | Problem | None:
    if response.status_code == 200:
        response_200 = PageJobRead.from_dict(response.json())

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
) -> Response[PageJobRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    status: list[JobStatus] | None | Unset = UNSET,
    model_id: None | str | Unset = UNSET,
    parent_id: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    sort: str | Unset = "-created_at",
    min_speedup: float | None | Unset = UNSET,
    min_compression_ratio: float | None | Unset = UNSET,
    min_fidelity_min: float | None | Unset = UNSET,
    max_accuracy_drop: float | None | Unset = UNSET,
    max_latency_p50_ms: float | None | Unset = UNSET,
    max_compressed_bytes: int | None | Unset = UNSET,
    label: list[str] | None | Unset = UNSET,
) -> Response[PageJobRead | Problem]:
    """List Jobs

     Newest first by default; ``sort`` and the min/max filters rank by report figures.

    Args:
        status (list[JobStatus] | None | Unset): repeat to list jobs in any of several
        model_id (None | str | Unset):
        parent_id (None | str | Unset): a goal job's id: list its candidate jobs
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        sort (str | Unset): one of created_at, speedup, compression_ratio, latency_p50_ms,
            fidelity_min, accuracy_drop, compressed_bytes; prefix '-' for descending. Jobs without
            figures come last. Default: '-created_at'.
        min_speedup (float | None | Unset):
        min_compression_ratio (float | None | Unset):
        min_fidelity_min (float | None | Unset):
        max_accuracy_drop (float | None | Unset):
        max_latency_p50_ms (float | None | Unset):
        max_compressed_bytes (int | None | Unset):
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageJobRead | Problem]
    """

    kwargs = _get_kwargs(
        status=status,
        model_id=model_id,
        parent_id=parent_id,
        limit=limit,
        offset=offset,
        sort=sort,
        min_speedup=min_speedup,
        min_compression_ratio=min_compression_ratio,
        min_fidelity_min=min_fidelity_min,
        max_accuracy_drop=max_accuracy_drop,
        max_latency_p50_ms=max_latency_p50_ms,
        max_compressed_bytes=max_compressed_bytes,
        label=label,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    status: list[JobStatus] | None | Unset = UNSET,
    model_id: None | str | Unset = UNSET,
    parent_id: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    sort: str | Unset = "-created_at",
    min_speedup: float | None | Unset = UNSET,
    min_compression_ratio: float | None | Unset = UNSET,
    min_fidelity_min: float | None | Unset = UNSET,
    max_accuracy_drop: float | None | Unset = UNSET,
    max_latency_p50_ms: float | None | Unset = UNSET,
    max_compressed_bytes: int | None | Unset = UNSET,
    label: list[str] | None | Unset = UNSET,
) -> PageJobRead | Problem | None:
    """List Jobs

     Newest first by default; ``sort`` and the min/max filters rank by report figures.

    Args:
        status (list[JobStatus] | None | Unset): repeat to list jobs in any of several
        model_id (None | str | Unset):
        parent_id (None | str | Unset): a goal job's id: list its candidate jobs
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        sort (str | Unset): one of created_at, speedup, compression_ratio, latency_p50_ms,
            fidelity_min, accuracy_drop, compressed_bytes; prefix '-' for descending. Jobs without
            figures come last. Default: '-created_at'.
        min_speedup (float | None | Unset):
        min_compression_ratio (float | None | Unset):
        min_fidelity_min (float | None | Unset):
        max_accuracy_drop (float | None | Unset):
        max_latency_p50_ms (float | None | Unset):
        max_compressed_bytes (int | None | Unset):
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageJobRead | Problem
    """

    return sync_detailed(
        client=client,
        status=status,
        model_id=model_id,
        parent_id=parent_id,
        limit=limit,
        offset=offset,
        sort=sort,
        min_speedup=min_speedup,
        min_compression_ratio=min_compression_ratio,
        min_fidelity_min=min_fidelity_min,
        max_accuracy_drop=max_accuracy_drop,
        max_latency_p50_ms=max_latency_p50_ms,
        max_compressed_bytes=max_compressed_bytes,
        label=label,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    status: list[JobStatus] | None | Unset = UNSET,
    model_id: None | str | Unset = UNSET,
    parent_id: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    sort: str | Unset = "-created_at",
    min_speedup: float | None | Unset = UNSET,
    min_compression_ratio: float | None | Unset = UNSET,
    min_fidelity_min: float | None | Unset = UNSET,
    max_accuracy_drop: float | None | Unset = UNSET,
    max_latency_p50_ms: float | None | Unset = UNSET,
    max_compressed_bytes: int | None | Unset = UNSET,
    label: list[str] | None | Unset = UNSET,
) -> Response[PageJobRead | Problem]:
    """List Jobs

     Newest first by default; ``sort`` and the min/max filters rank by report figures.

    Args:
        status (list[JobStatus] | None | Unset): repeat to list jobs in any of several
        model_id (None | str | Unset):
        parent_id (None | str | Unset): a goal job's id: list its candidate jobs
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        sort (str | Unset): one of created_at, speedup, compression_ratio, latency_p50_ms,
            fidelity_min, accuracy_drop, compressed_bytes; prefix '-' for descending. Jobs without
            figures come last. Default: '-created_at'.
        min_speedup (float | None | Unset):
        min_compression_ratio (float | None | Unset):
        min_fidelity_min (float | None | Unset):
        max_accuracy_drop (float | None | Unset):
        max_latency_p50_ms (float | None | Unset):
        max_compressed_bytes (int | None | Unset):
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[PageJobRead | Problem]
    """

    kwargs = _get_kwargs(
        status=status,
        model_id=model_id,
        parent_id=parent_id,
        limit=limit,
        offset=offset,
        sort=sort,
        min_speedup=min_speedup,
        min_compression_ratio=min_compression_ratio,
        min_fidelity_min=min_fidelity_min,
        max_accuracy_drop=max_accuracy_drop,
        max_latency_p50_ms=max_latency_p50_ms,
        max_compressed_bytes=max_compressed_bytes,
        label=label,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    status: list[JobStatus] | None | Unset = UNSET,
    model_id: None | str | Unset = UNSET,
    parent_id: None | str | Unset = UNSET,
    limit: int | Unset = 50,
    offset: int | Unset = 0,
    sort: str | Unset = "-created_at",
    min_speedup: float | None | Unset = UNSET,
    min_compression_ratio: float | None | Unset = UNSET,
    min_fidelity_min: float | None | Unset = UNSET,
    max_accuracy_drop: float | None | Unset = UNSET,
    max_latency_p50_ms: float | None | Unset = UNSET,
    max_compressed_bytes: int | None | Unset = UNSET,
    label: list[str] | None | Unset = UNSET,
) -> PageJobRead | Problem | None:
    """List Jobs

     Newest first by default; ``sort`` and the min/max filters rank by report figures.

    Args:
        status (list[JobStatus] | None | Unset): repeat to list jobs in any of several
        model_id (None | str | Unset):
        parent_id (None | str | Unset): a goal job's id: list its candidate jobs
        limit (int | Unset):  Default: 50.
        offset (int | Unset):  Default: 0.
        sort (str | Unset): one of created_at, speedup, compression_ratio, latency_p50_ms,
            fidelity_min, accuracy_drop, compressed_bytes; prefix '-' for descending. Jobs without
            figures come last. Default: '-created_at'.
        min_speedup (float | None | Unset):
        min_compression_ratio (float | None | Unset):
        min_fidelity_min (float | None | Unset):
        max_accuracy_drop (float | None | Unset):
        max_latency_p50_ms (float | None | Unset):
        max_compressed_bytes (int | None | Unset):
        label (list[str] | None | Unset): `key=value`; repeat to require several labels (ANDed)

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        PageJobRead | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            model_id=model_id,
            parent_id=parent_id,
            limit=limit,
            offset=offset,
            sort=sort,
            min_speedup=min_speedup,
            min_compression_ratio=min_compression_ratio,
            min_fidelity_min=min_fidelity_min,
            max_accuracy_drop=max_accuracy_drop,
            max_latency_p50_ms=max_latency_p50_ms,
            max_compressed_bytes=max_compressed_bytes,
            label=label,
        )
    ).parsed
