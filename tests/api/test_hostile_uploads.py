"""Hostile uploads: refused with a clear 4xx, nothing executed, nothing left behind."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.api.test_bad_input import (
    assert_nothing_left,
    assert_problem,
    assert_rejected_at_inspection,
    leftovers,
)
from tests.api.test_hardening_requests import MiB, PeakMemory, api_pid, cpu_seconds
from tests.fixtures.helpers import upload
from tests.fixtures.stack import Stack

CONFIG = b'{"model_type": "bert"}'


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, target)
    return buf.getvalue()


def _tar(members: dict[str, bytes], links: dict[str, tuple[bytes, str]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in links.items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def _zip_index_bomb(entries: int) -> bytes:
    """A zip whose central directory lists ``entries`` copies of one empty member (zip64 end
    records), 47 bytes each: opening it with zipfile builds an object for every one."""
    prefix = b"PK\x03\x04" + bytes(26) + b"a"
    row = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 20, *[0] * 7, 1, *[0] * 6) + b"a"
    index = row * entries
    end64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, len(index), len(prefix)
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(prefix) + len(index), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, *[0xFFFF] * 2, *[0xFFFFFFFF] * 2, 0)
    return prefix + index + end64 + locator + end


def _onnx_with_external_data(location: str) -> bytes:
    weight = helper.make_tensor(
        "w", TensorProto.FLOAT, [2, 2], np.zeros(4, np.float32).tobytes(), raw=True
    )
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    return onnx.helper.make_model(graph).SerializeToString()


class TestNothingExecutes:
    @pytest.fixture
    def marker(self, api: Stack) -> Path:
        return api.data_dir / "PWNED"

    def test_raw_pickle(self, api: Stack, marker: Path) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            body = assert_problem(
                upload(client, pickle.dumps(_WritesMarker(marker)), "model.pt"), 422
            )
        assert "safetensors" in str(body["detail"]) and "ONNX" in str(body["detail"])
        assert not marker.exists()
        assert_nothing_left(api, as_found)

    def test_torch_save_zip(self, api: Stack, marker: Path) -> None:
        shaped = _zip(
            {"archive/data.pkl": pickle.dumps(_WritesMarker(marker)), "archive/version": b"3\n"}
        )
        with api.client() as client:
            torch_zip = assert_problem(upload(client, shaped, "model.pt"), 422)
            assert "never accepted" in str(torch_zip["detail"])
        hf_with_bin = _zip({"config.json": CONFIG, "pytorch_model.bin": shaped})
        assert_rejected_at_inspection(api, hf_with_bin, "safetensors")
        assert not marker.exists()

    def test_pickle_renamed_to_safetensors(self, api: Stack, marker: Path) -> None:
        disguised = _zip(
            {"config.json": CONFIG, "model.safetensors": pickle.dumps(_WritesMarker(marker))}
        )
        assert_rejected_at_inspection(api, disguised, "safetensors")
        assert not marker.exists()


class TestArchiveAttacks:
    @pytest.mark.parametrize(
        "content",
        [
            _zip({"config.json": CONFIG}, symlinks={"model.safetensors": "/etc/passwd"}),
            _tar({"config.json": CONFIG}, {"model.safetensors": (tarfile.SYMTYPE, "/etc/passwd")}),
            _tar({"config.json": CONFIG}, {"model.safetensors": (tarfile.LNKTYPE, "config.json")}),
            _tar({"../../outside/config.json": CONFIG}, {}),
        ],
        ids=["zip-symlink", "tar-symlink", "tar-hardlink", "tar-traversal"],
    )
    def test_links_and_escapes(self, api: Stack, content: bytes) -> None:
        as_found = leftovers(api)
        with api.client() as client:
            assert_problem(upload(client, content), 422)
        assert not (api.data_dir.parent / "outside").exists()
        assert_nothing_left(api, as_found)

    def test_too_many_members(self, api: Stack) -> None:
        as_found = leftovers(api)
        bomb = _zip({f"f{i}.txt": b"" for i in range(2_100)})
        with api.client() as client:
            body = assert_problem(upload(client, bomb), 422)
        assert "members" in str(body["detail"])
        assert_nothing_left(api, as_found)

    def test_zip_index_bomb_refused_from_its_end_record(self, api: Stack) -> None:
        """Today's zip: 45 MB listing a million members cost 7 s of CPU and 270 MB per open."""
        as_found = leftovers(api)
        bomb = _zip_index_bomb(1_000_000)
        pid = api_pid(api)
        with api.client() as client, PeakMemory(pid) as peak:
            before = cpu_seconds(pid)
            body = assert_problem(upload(client, bomb), 422)
            spent = cpu_seconds(pid) - before
        assert "members" in str(body["detail"])
        assert peak.growth_bytes < 64 * MiB, f"API grew {peak.growth_bytes / MiB:.0f} MiB"
        assert spent < 3, f"the API spent {spent:.1f} s of CPU on a 45 MB upload"
        assert_nothing_left(api, as_found)

    def test_compression_ratio_bomb(self, api: Stack) -> None:
        as_found = leftovers(api)
        bomb = _zip({"config.json": CONFIG, "model.safetensors": b"\0" * (64 * 1024 * 1024)})
        assert len(bomb) < 1024 * 1024
        with api.client() as client:
            body = assert_problem(upload(client, bomb), 422)
        assert "ratio" in str(body["detail"])
        assert_nothing_left(api, as_found)

    @pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd"])
    def test_onnx_external_data_outside_its_folder(self, api: Stack, location: str) -> None:
        archive = _zip({"model.onnx": _onnx_with_external_data(location)})
        assert_rejected_at_inspection(api, archive, "external data")


class TestExecutableFormats:
    """TorchScript and torch.export archives run code when loaded: refused by default."""

    @staticmethod
    def _torchscript() -> bytes:
        import torch

        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
        return buf.getvalue()

    @staticmethod
    def _exported_program() -> bytes:
        import torch

        program = torch.export.export(torch.nn.Linear(2, 2), (torch.ones(1, 2),))
        buf = io.BytesIO()
        torch.export.save(program, buf)
        return buf.getvalue()

    @pytest.mark.parametrize("kind", ["torchscript", "pt2"])
    def test_refused_with_the_safe_formats_named(self, api: Stack, kind: str) -> None:
        as_found = leftovers(api)
        content = self._torchscript() if kind == "torchscript" else self._exported_program()
        with api.client() as client:
            body = assert_problem(upload(client, content, f"model.{kind}"), 422)
        assert "executable formats" in str(body["detail"])
        assert "safetensors" in str(body["detail"])
        assert_nothing_left(api, as_found)
