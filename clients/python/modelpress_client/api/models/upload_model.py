from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.body_upload_model import BodyUploadModel
from ...models.model_read import ModelRead
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: BodyUploadModel,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/models",
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ModelRead | Problem | None:
    if response.status_code == 201:
        response_201 = ModelRead.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ModelRead | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadModel,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ModelRead | Problem]:
    """Upload a model (multipart field 'file')

     Cheap checks run here (pickles, executable formats, archive escapes and bombs, unknown formats: 422,
    nothing kept). The stored upload is then `pending` until a worker has unpacked and inspected it:
    `ready` with the inspection, or `rejected` with `rejection_reason`. Jobs need a ready model (409
    with Retry-After while pending).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadModel):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ModelRead | Problem]
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
    body: BodyUploadModel,
    idempotency_key: None | str | Unset = UNSET,
) -> ModelRead | Problem | None:
    """Upload a model (multipart field 'file')

     Cheap checks run here (pickles, executable formats, archive escapes and bombs, unknown formats: 422,
    nothing kept). The stored upload is then `pending` until a worker has unpacked and inspected it:
    `ready` with the inspection, or `rejected` with `rejection_reason`. Jobs need a ready model (409
    with Retry-After while pending).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadModel):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ModelRead | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodyUploadModel,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[ModelRead | Problem]:
    """Upload a model (multipart field 'file')

     Cheap checks run here (pickles, executable formats, archive escapes and bombs, unknown formats: 422,
    nothing kept). The stored upload is then `pending` until a worker has unpacked and inspected it:
    `ready` with the inspection, or `rejected` with `rejection_reason`. Jobs need a ready model (409
    with Retry-After while pending).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadModel):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ModelRead | Problem]
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
    body: BodyUploadModel,
    idempotency_key: None | str | Unset = UNSET,
) -> ModelRead | Problem | None:
    """Upload a model (multipart field 'file')

     Cheap checks run here (pickles, executable formats, archive escapes and bombs, unknown formats: 422,
    nothing kept). The stored upload is then `pending` until a worker has unpacked and inspected it:
    `ready` with the inspection, or `rejected` with `rejection_reason`. Jobs need a ready model (409
    with Retry-After while pending).

    Args:
        idempotency_key (None | str | Unset): a client-chosen key, kept a day: a repeat with the
            same body returns the original resource (same status and Location), one with a different
            body gets 422
        body (BodyUploadModel):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ModelRead | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
