"""A goal job taken over after its worker was lost resumes its search: the candidates the first
attempt made are reused (their rows are the truth), not built and measured again."""

from __future__ import annotations

from pathlib import Path

from app.db.models import JobStatus
from app.jobs import repository as jobs_repository
from compressor.search.goal import Goal
from compressor.search.planner import SearchContext, first_round
from tests.workers.conftest import add_job, broker_messages, session
from workers.search import _submit

GOAL = Goal(objective="size", max_accuracy_drop=0.01)
CTX = SearchContext(
    kind="architecture", runtime="onnxruntime", device="cpu", has_train=False, has_calibration=False
)


def test_a_second_attempt_reuses_candidates_and_runs_only_new_ones(model_id: str, db: Path) -> None:
    parent_id = add_job(
        model_id=model_id, status=JobStatus.RUNNING, recipe=None, goal=GOAL.model_dump(mode="json")
    )
    with session() as s:
        parent = jobs_repository.get(s, parent_id)
        assert parent is not None
        s.expunge(parent)
    proposals = first_round(GOAL, CTX)
    first = _submit(parent, proposals[:3], 1, 60)
    assert len(set(first)) == 3 and len(broker_messages(db)) == 3
    # The lost attempt's first candidate was cancelled with it; the others finished or wait.
    add_job(model_id=model_id, status=JobStatus.CANCELLED, parent_id=parent_id,
            recipe=proposals[3].recipe.model_dump(mode="json"))  # fmt: skip

    again = _submit(parent, proposals, 1, 60)

    assert again[:3] == first  # reused, in the proposals' order
    assert len(set(again)) == len(proposals)
    assert len(broker_messages(db)) == 3 + (len(proposals) - 3)  # only the new ones were sent
    with session() as s:
        children = jobs_repository.children(s, parent_id)
    assert len(children) == len(proposals) + 1  # the cancelled one stays, not reused
