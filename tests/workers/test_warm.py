"""The spare job process's warming (issue 24) loads what a job's first seconds would: a
module-level `import transformers` is lazy and loads almost nothing by itself."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures.stack import ROOT

CHECK = """
import sys
import workers.job_process as job_process
job_process._job_waiting = lambda: False  # no job arrives meanwhile
job_process._warm()
wanted = ("transformers.modeling_utils", "transformers.tokenization_utils_fast",
          "onnxruntime.quantization", "onnx")
print(sorted(m for m in wanted if m not in sys.modules))
"""


def test_warming_loads_the_model_base_classes_and_the_quantizers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
        text=True, timeout=300, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
