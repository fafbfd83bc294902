"""The entry of a job process started ahead of its job (workers/spare.py).

It ties itself to its parent before anything else: warming takes seconds of imports, and a
parent that died in them would otherwise leave it waiting with nothing to kill it.
"""

from __future__ import annotations

import sys

from compressor.lifeline import die_with_parent


def main() -> int:
    die_with_parent(int(sys.argv[1]))  # the pool process that started it
    from workers.job_process import spare

    return spare()


if __name__ == "__main__":
    sys.exit(main())
