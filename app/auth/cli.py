"""`modelpress api-key create|list|revoke`: keys are made on the server, by its operator."""

from __future__ import annotations

import argparse
import sys

from app.auth import keys
from app.db.session import get_sessionmaker


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api_key = sub.add_parser("api-key", help="create, list or revoke API keys")
    actions = api_key.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; it is printed once, last line")
    create.add_argument("--tenant", required=True, help="the tenant whose resources it reaches")
    create.add_argument("--admin", action="store_true", help="may also use operator views")
    actions.add_parser("list", help="keys by tenant (prefix only)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    with get_sessionmaker().begin() as session:
        if args.action == "create":
            tenant = args.tenant.strip()
            if not tenant or len(tenant) > 64:
                print("--tenant must be 1 to 64 characters", file=sys.stderr)
                return 2
            row, key = keys.create_key(session, tenant=tenant, admin=args.admin)
            role = "admin key" if row.admin else "key"
            print(f"created {role} {row.id} for tenant {row.tenant!r}; it is shown only now:")
            print(key)
            return 0
        if args.action == "list":
            print("id\ttenant\tprefix\tadmin\tcreated\trevoked")
            for row in keys.list_keys(session):
                revoked = row.revoked_at.isoformat() if row.revoked_at else "-"
                print(
                    f"{row.id}\t{row.tenant}\t{row.prefix}…\t{row.admin}\t"
                    f"{row.created_at.isoformat()}\t{revoked}"
                )
            return 0
        if not keys.revoke(session, args.key_id):
            print(f"no active key with id {args.key_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0
