"""`modelpress` command: migrate, serve, worker, and run (all of it on one machine)."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import os
import signal
import sys
from pathlib import Path

from app.auth import cli as auth_cli
from app.settings import get_settings
from app.supervisor import SUPERVISOR_PID_ENV, Program, Supervisor

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


def refuse_open_unauthenticated() -> None:
    """Authentication may be off only on loopback; anywhere else anyone could reach every model."""
    settings = get_settings()
    host = settings.server.host
    if settings.auth.auth_required:
        return
    if not is_loopback(host):
        sys.exit(
            f"modelpress: refusing to listen on {host} without authentication; set "
            "MODELPRESS_AUTH_REQUIRED=true (keys: modelpress api-key create --tenant NAME) "
            "or bind to 127.0.0.1 with MODELPRESS_HOST"
        )
    print(
        f"modelpress: authentication is off (MODELPRESS_AUTH_REQUIRED=false); serving on "
        f"loopback ({host}) only",
        file=sys.stderr,
        flush=True,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def worker_cmd(queues: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app:celery_app", "worker",
        "-Q", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--hostname", f"{queues.replace(',', '-')}@%h-{os.getpid()}",
    ]  # fmt: skip


def _die_with_supervisor() -> None:
    """Under `modelpress run`: SIGTERM this process if the supervisor dies, so nothing lingers."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    if not supervisor:
        return
    with contextlib.suppress(OSError):  # PR_SET_PDEATHSIG survives the exec below
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != int(supervisor):  # it died before the line above
        sys.exit(1)


def run_all(queues: str) -> int:
    refuse_open_unauthenticated()
    migrate()
    settings = get_settings()
    server, options = settings.server, settings.supervisor
    cli = [sys.executable, "-m", "app.cli"]
    supervisor = Supervisor(
        programs=[
            Program("api", [*cli, "serve"], ROOT),
            Program("worker", [*cli, "worker", "--queues", queues], ROOT),
        ],
        max_restarts=options.supervisor_max_restarts,
        backoff_s=options.supervisor_backoff_s,
        backoff_max_s=options.supervisor_backoff_max_s,
        stop_grace_s=options.supervisor_stop_grace_s,
    )
    print(f"modelpress is running at http://{server.host}:{server.port}  (Ctrl-C stops it)")
    print(f"API docs: http://{server.host}:{server.port}/docs", flush=True)
    return supervisor.run()


def main() -> None:
    parser = argparse.ArgumentParser(prog="modelpress")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    sub.add_parser("serve", help="run the API server")
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default="cpu,inspect")
    worker.add_argument("--concurrency", type=int, default=1)
    run = sub.add_parser(
        "run", help="migrate, then run the API and one worker, restarting them if they die"
    )
    run.add_argument("--queues", default="cpu,inspect")
    auth_cli.add_commands(sub)
    args = parser.parse_args()
    if args.command == "migrate":
        migrate()
    elif args.command == "serve":
        refuse_open_unauthenticated()
        _die_with_supervisor()
        os.execv(sys.executable, serve_cmd())
    elif args.command == "worker":
        _die_with_supervisor()
        os.execv(sys.executable, worker_cmd(args.queues, args.concurrency))
    elif args.command == "api-key":
        sys.exit(auth_cli.run(args))
    else:
        sys.exit(run_all(args.queues))


if __name__ == "__main__":
    main()
