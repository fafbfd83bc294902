"""docs/benchmarks.md is rendered from docs/benchmarks.json alone, and says which run measured what.

Fast: no benchmark runs. The committed page must be exactly what the renderer makes of the
committed JSON, so no figure on it can be typed by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench import page
from bench.common import Row
from bench.digits import judge_download
from bench.goal import judge

DOCS = Path(__file__).resolve().parents[1] / "docs"
NUMBER = re.compile(r"\d+(?:\.\d+)*")
SAME_RUN = "Every figure below was measured in the same run"


def _run(date: str, commit: str) -> dict[str, Any]:
    return {
        "date": date,
        "commit": commit,
        "uncommitted_changes": False,
        "load_average_start": 1.25,
        "load_average_end": 1.75,
        "wall_min": 12.5,
        "command": ".venv/bin/python -m bench.run",
        "machine": {"cpu": "test", "cores": 2},
        "techniques": ["pruning"],
    }


def _section(key: str, met: bool) -> dict[str, Any]:
    row = Row(
        f"{key} row", {"size": "3.5x"}, "goal", met, "3.5x" + ("" if met else " (short on: size)")
    )
    return {"key": key, "title": f"Section {key}", "rows": [page.row_dict(row)]}


def _full_then_only() -> tuple[dict[str, Any], dict[str, Any]]:
    order = ("a", "b")
    full = page.merge(
        page.read(Path("/nonexistent.json")),
        run_id="r1",
        run=_run("2030-01-01 10:00 UTC", "aaaaaaaaaaaa"),
        sections=[_section("a", True), _section("b", True)],
        full=True,
        order=order,
    )
    only = page.merge(
        json.loads(json.dumps(full)),
        run_id="r2",
        run=_run("2030-01-02 10:00 UTC", "bbbbbbbbbbbb"),
        sections=[_section("b", False)],
        full=False,
        order=order,
    )
    return full, only


class TestCommittedPage:
    def test_page_is_the_render_of_the_json(self) -> None:
        doc = json.loads((DOCS / "benchmarks.json").read_text())
        assert page.render(doc) == (DOCS / "benchmarks.md").read_text()

    def test_every_number_on_the_page_is_in_the_json(self) -> None:
        on_page = set(NUMBER.findall((DOCS / "benchmarks.md").read_text()))
        in_json = set(NUMBER.findall((DOCS / "benchmarks.json").read_text()))
        assert on_page - in_json == set()

    def test_header_claims_one_run_only_when_true(self) -> None:
        doc = json.loads((DOCS / "benchmarks.json").read_text())
        one_run = doc["latest_full_run"] is not None and all(
            s["run"] == doc["latest_full_run"] for s in doc["sections"]
        )
        assert (SAME_RUN in (DOCS / "benchmarks.md").read_text()) == one_run


class TestMerge:
    def test_full_run_claims_one_run_and_marks_nothing(self) -> None:
        full, _ = _full_then_only()
        text = page.render(full)
        assert SAME_RUN in text
        assert "Measured separately" not in text and "predates" not in text
        assert "Latest full run: 2030-01-01 10:00 UTC, commit aaaaaaaaaaaa" in text

    def test_only_replaces_its_section_and_marks_the_others(self) -> None:
        _, only = _full_then_only()
        text = page.render(only)
        assert SAME_RUN not in text
        a, b = text.split("## Section b")
        assert (
            "Measured in the full run at commit aaaaaaaaaaaa, which predates the latest run's commit bbbbbbbbbbbb"
            in a
        )
        assert (
            "Measured separately: 2030-01-02 10:00 UTC, commit bbbbbbbbbbbb, load average 1.25 at start and 1.75 at end, wall time 12.5 min"
            in b
        )
        assert [s["key"] for s in only["sections"]] == ["a", "b"]
        assert set(only["runs"]) == {"r1", "r2"}
        # The shortfall shows the goal slipping from the page it replaced.
        assert (
            "- b row (measured separately): goal goal; reached 3.5x (short on: size). This goal was met"
            in text
        )

    def test_a_full_run_after_only_drops_the_older_runs(self) -> None:
        _, only = _full_then_only()
        again = page.merge(
            only, run_id="r3", run=_run("2030-01-03 10:00 UTC", "cccccccccccc"),
            sections=[_section("a", True), _section("b", True)], full=True, order=("a", "b"),
        )  # fmt: skip
        assert set(again["runs"]) == {"r3"}
        assert SAME_RUN in page.render(again)

    def test_a_run_over_its_wall_time_goal_is_a_shortfall_naming_the_slowest_sections(
        self,
    ) -> None:
        def doc(wall_min: float) -> dict[str, Any]:
            run = {**_run("2030-01-01 10:00 UTC", "aaaaaaaaaaaa"), "wall_min": wall_min}
            run["wall_goal_min"] = 30
            sections = [
                {**_section("a", True), "wall_s": 900},
                {**_section("b", True), "wall_s": 1500},
            ]
            return page.merge(
                page.read(Path("/nonexistent.json")), run_id="r1", run=run,
                sections=sections, full=True, order=("a", "b"),
            )  # fmt: skip

        slow = page.render(doc(40.0))
        assert "Section wall time: 1500 s." in slow.split("## Section b")[1]
        assert (
            "- The full run took 40.0 min, over its goal of 30 min; slowest sections: b 1500 s, a 900 s."
            in slow
        )
        assert "over its goal" not in page.render(doc(29.5))


class TestLikeForLike:
    def test_digits_mlp_misses_when_only_the_uncompressed_ratio_reaches_40x(self) -> None:
        met, reached = judge_download(39.1, {"stripped fp32 ONNX": 41.5}, -0.28)
        assert not met
        assert (
            reached.startswith("39.1x like for like") and "41.5x vs stripped fp32 ONNX" in reached
        )
        assert "short on: size" in reached
        assert judge_download(40.2, {"stripped fp32 ONNX": 43.0}, 0.1)[0]

    def test_goal_rows_are_judged_on_the_packed_ratio(self) -> None:
        met, reached = judge({"packed": 39.0, "onnx": 42.0, "st": 41.0, "lost": 0.0})
        assert not met and reached.startswith("39.0x like for like")
        assert judge({"packed": 40.5, "onnx": 44.0, "st": 43.0, "lost": 0.4})[0]


class TestPeers:
    """The peer rows beside structured pruning and low-rank (bench/peers.py)."""

    def test_a_loss_to_the_peer_is_generated_from_the_numbers_and_listed_as_a_shortfall(
        self,
    ) -> None:
        from bench.peers import versus

        slower = versus([("p50", "0.900 ms", "0.800 ms", 0.9, 0.8, False)])
        assert slower.endswith(f"; {page.LOSES} p50")
        # A difference below the page's precision is a tie, not a loss.
        tie = versus([("p50", "0.800 ms", "0.800 ms", 0.8004, 0.8001, False)])
        assert page.LOSES not in tie
        better = versus([("accuracy", "99.00%", "98.00%", 0.99, 0.98, True)])
        assert page.LOSES not in better
        row = Row("ours", {"p50": "0.900 ms"}, "goal", True, "2.00x faster; " + slower)
        doc = page.merge(
            page.read(Path("/nonexistent.json")),
            run_id="r1",
            run=_run("2030-01-01 10:00 UTC", "aaaaaaaaaaaa"),
            sections=[{"key": "a", "title": "A", "rows": [page.row_dict(row)]}],
            full=True,
            order=("a",),
        )
        short = page.render(doc).split("## Where we fall short")[1]
        assert f"- ours: 2.00x faster; {slower}." in short

    def test_plain_svd_is_the_best_rank_r_approximation(self) -> None:
        import torch
        from torch import nn

        from bench.peers import _svd_layer

        torch.manual_seed(0)
        layer = nn.Linear(12, 9)
        x = torch.randn(5, 12)
        s = torch.linalg.svdvals(layer.weight.detach().double())
        with torch.no_grad():
            full = _svd_layer(layer, 9)(x)
            assert torch.allclose(full, layer(x), atol=1e-5)
            cut = _svd_layer(layer, 3)
            w = cut[1].weight.double() @ cut[0].weight.double()
        # Eckart-Young: the rank-3 error in Frobenius norm is what the dropped values hold.
        error = torch.linalg.matrix_norm(w - layer.weight.detach().double())
        assert abs(float(error) - float(s[3:].square().sum().sqrt())) < 1e-5
        conv = nn.Conv2d(3, 8, 3, padding=1)
        image = torch.randn(2, 3, 6, 6)
        with torch.no_grad():
            assert torch.allclose(_svd_layer(conv, 8)(image), conv(image), atol=1e-5)

    def test_peer_settings_come_from_our_step_report(self) -> None:
        from bench.peers import MagnitudePeerConfig, PlainSvdPeerConfig, peer_first_step
        from compressor.report import StepReport

        pruned = StepReport.model_validate(
            {
                "technique": "structured_pruning",
                "amount": 0.5,
                "layers_not_pruned": {
                    "head": "its outputs are the model's outputs",
                    "mid": "its output channels are coupled to a layer that cannot lose any",
                },
            }
        )
        peer = peer_first_step(pruned)
        assert isinstance(peer, MagnitudePeerConfig)
        assert (peer.amount, peer.ignored) == (0.5, ("head",))
        factored = StepReport.model_validate(
            {
                "technique": "low_rank",
                "factorized": {
                    "fc": {
                        "kind": "linear_svd",
                        "rank": 4,
                        "full_rank": 10,
                        "parameters": [200, 120],
                    },
                    "conv": {
                        "kind": "tucker2",
                        "rank": [6, 5],
                        "full_rank": [16, 72],
                        "parameters": [16 * 8 * 9, 8 * 5 + 5 * 6 * 9 + 6 * 16],
                    },
                },
            }
        )
        svd = peer_first_step(factored)
        assert isinstance(svd, PlainSvdPeerConfig)
        inner = 8 * 9  # the conv's weight flattened: 16 x 72
        assert svd.ranks["fc"] == 4 and svd.matched == ("conv",)
        # The SVD rank that fits in the Tucker-2 layer's parameters, and no more.
        ours = 8 * 5 + 5 * 6 * 9 + 6 * 16
        assert svd.ranks["conv"] * (inner + 16) <= ours < (svd.ranks["conv"] + 1) * (inner + 16)
