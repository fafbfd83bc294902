from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.body_upload_dataset import BodyUploadDataset
from ...models.dataset_read import DatasetRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: BodyUploadDataset,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/datasets",
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DatasetRead | Problem | None:
    if response.status_code == 201:
        response_201 = DatasetRead.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[DatasetRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadDataset,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[DatasetRead | Problem]:
    """Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')

     Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must match the bytes
    it holds, row and array caps; JSONL: the first row): 422, nothing kept. The stored upload is then
    `pending` until a worker has inspected it: `ready` with the inspection, or `rejected` with
    `rejection_reason`. Jobs need a ready dataset (409 with Retry-After while it is inspected, 422 once
    rejected).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetRead | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadDataset,
    idempotency_key: None | str | Unset = UNSET,
) -> DatasetRead | Problem | None:
    """Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')

     Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must match the bytes
    it holds, row and array caps; JSONL: the first row): 422, nothing kept. The stored upload is then
    `pending` until a worker has inspected it: `ready` with the inspection, or `rejected` with
    `rejection_reason`. Jobs need a ready dataset (409 with Retry-After while it is inspected, 422 once
    rejected).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetRead | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadDataset,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[DatasetRead | Problem]:
    """Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')

     Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must match the bytes
    it holds, row and array caps; JSONL: the first row): 422, nothing kept. The stored upload is then
    `pending` until a worker has inspected it: `ready` with the inspection, or `rejected` with
    `rejection_reason`. Jobs need a ready dataset (409 with Retry-After while it is inspected, 422 once
    rejected).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetRead | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadDataset,
    idempotency_key: None | str | Unset = UNSET,
) -> DatasetRead | Problem | None:
    """Upload a dataset: .npz/.safetensors tensors or JSONL text (multipart field 'file')

     Cheap checks run here (tensor headers: numeric dtypes only, each declared shape must match the bytes
    it holds, row and array caps; JSONL: the first row): 422, nothing kept. The stored upload is then
    `pending` until a worker has inspected it: `ready` with the inspection, or `rejected` with
    `rejection_reason`. Jobs need a ready dataset (409 with Retry-After while it is inspected, 422 once
    rejected).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetRead | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
