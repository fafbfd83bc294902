from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="WorkerRead")


@_attrs_define
class WorkerRead:
    """
    Attributes:
        concurrency (int):
        device (str):
        gpu_memory_bytes (int | None):
        gpu_name (None | str):
        heartbeat_at (datetime.datetime):
        host (str):
        name (str):
        pid (int):
        queues (list[str]):
        started_at (datetime.datetime):
        torch_threads (int):
        last_restart_reason (None | str | Unset): why the previous worker process stopped: signal, exit code, OOM
        restarts (int | Unset): times `modelpress run` restarted this worker after it died Default: 0.
    """

    concurrency: int
    device: str
    gpu_memory_bytes: int | None
    gpu_name: None | str
    heartbeat_at: datetime.datetime
    host: str
    name: str
    pid: int
    queues: list[str]
    started_at: datetime.datetime
    torch_threads: int
    last_restart_reason: None | str | Unset = UNSET
    restarts: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        concurrency = self.concurrency

        device = self.device

        gpu_memory_bytes: int | None
        gpu_memory_bytes = self.gpu_memory_bytes

        gpu_name: None | str
        gpu_name = self.gpu_name

        heartbeat_at = self.heartbeat_at.isoformat()

        host = self.host

        name = self.name

        pid = self.pid

        queues = self.queues

        started_at = self.started_at.isoformat()

        torch_threads = self.torch_threads

        last_restart_reason: None | str | Unset
        if isinstance(self.last_restart_reason, Unset):
            last_restart_reason = UNSET
        else:
            last_restart_reason = self.last_restart_reason

        restarts = self.restarts

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "concurrency": concurrency,
                "device": device,
                "gpu_memory_bytes": gpu_memory_bytes,
                "gpu_name": gpu_name,
                "heartbeat_at": heartbeat_at,
                "host": host,
                "name": name,
                "pid": pid,
                "queues": queues,
                "started_at": started_at,
                "torch_threads": torch_threads,
            }
        )
        if last_restart_reason is not UNSET:
            field_dict["last_restart_reason"] = last_restart_reason
        if restarts is not UNSET:
            field_dict["restarts"] = restarts

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        concurrency = d.pop("concurrency")

        device = d.pop("device")

        def _parse_gpu_memory_bytes(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        gpu_memory_bytes = _parse_gpu_memory_bytes(d.pop("gpu_memory_bytes"))

        def _parse_gpu_name(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        gpu_name = _parse_gpu_name(d.pop("gpu_name"))

        heartbeat_at = datetime.datetime.fromisoformat(d.pop("heartbeat_at"))

        host = d.pop("host")

        name = d.pop("name")

        pid = d.pop("pid")

        queues = cast(list[str], d.pop("queues"))

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        torch_threads = d.pop("torch_threads")

        def _parse_last_restart_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        last_restart_reason = _parse_last_restart_reason(d.pop("last_restart_reason", UNSET))

        restarts = d.pop("restarts", UNSET)

        worker_read = cls(
            concurrency=concurrency,
            device=device,
            gpu_memory_bytes=gpu_memory_bytes,
            gpu_name=gpu_name,
            heartbeat_at=heartbeat_at,
            host=host,
            name=name,
            pid=pid,
            queues=queues,
            started_at=started_at,
            torch_threads=torch_threads,
            last_restart_reason=last_restart_reason,
            restarts=restarts,
        )

        worker_read.additional_properties = d
        return worker_read

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
