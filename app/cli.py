"""`modelpress` command: migrate, serve, worker, and run (all of it on one machine)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


def migrate() -> None:
    from alembic import command
    from alembic.config import Config

    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")


def serve_cmd() -> list[str]:
    server = get_settings().server
    return [
        sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
        "--host", server.host, "--port", str(server.port),
    ]  # fmt: skip


def worker_cmd(queues: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app:celery_app", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--hostname", f"{queues.replace(',', '-')}@%h-{os.getpid()}",
    ]  # fmt: skip


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_all(queues: str) -> int:
    signal.signal(signal.SIGTERM, _raise_interrupt)
    migrate()
    server = get_settings().server
    procs = [
        subprocess.Popen(serve_cmd(), cwd=ROOT),
        subprocess.Popen(worker_cmd(queues, 1), cwd=ROOT),
    ]
    print(f"modelpress is running at http://{server.host}:{server.port}  (Ctrl-C stops it)")
    print(f"API docs: http://{server.host}:{server.port}/docs", flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0) for p in procs)


def main() -> None:
    parser = argparse.ArgumentParser(prog="modelpress")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    sub.add_parser("serve", help="run the API server")
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default="cpu,inspect")
    worker.add_argument("--concurrency", type=int, default=1)
    run = sub.add_parser("run", help="migrate, then run the API and one worker")
    run.add_argument("--queues", default="cpu,inspect")
    args = parser.parse_args()
    if args.command == "migrate":
        migrate()
    elif args.command == "serve":
        os.execv(sys.executable, serve_cmd())
    elif args.command == "worker":
        os.execv(sys.executable, worker_cmd(args.queues, args.concurrency))
    else:
        sys.exit(run_all(args.queues))


if __name__ == "__main__":
    main()
