"""`syllabus keys create|list|revoke`: API keys for machines, written straight to the NATS bucket every gateway
follows (an operator's command, as hatchet-admin's tokens are: it needs SYLLABUS_NATS_URL, not a key of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import nats
import nats.errors

from cli.jobargs import UsageError
from syllabus.apikeys import DEFAULT_SCOPES, SCOPES, ApiKey, ApiKeys, UnknownKey
from syllabus.config import CommonConfig
from syllabus.jetstream import nats_client, nats_options
from syllabus.process import require_nats
from syllabus.topology import Topology

CONNECT_TIMEOUT = 5.0


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    keys: argparse.ArgumentParser = subparsers.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys let machines call the gateway (Authorization: Bearer <key>) for one tenant, with "
        "scopes. Only a hash of each key is stored. Needs SYLLABUS_NATS_URL (the NATS the gateways use).",
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        help="make a key and print it (it is shown once)",
        epilog="example:\n  syllabus keys create --tenant acme --scopes read,write --name ci",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument("--tenant", required=True, help="the tenant the key acts for")
    create.add_argument(
        "--scopes",
        default=",".join(DEFAULT_SCOPES),
        help=f"comma-separated, of {', '.join(SCOPES)} (default: {','.join(DEFAULT_SCOPES)})",
    )
    create.add_argument("--name", default="", help="what the key is for, shown by list")
    create.set_defaults(func=_run(_create))
    listing = actions.add_parser("list", help="show every key (never the key itself)")
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    listing.set_defaults(func=_run(_list))
    revoke = actions.add_parser("revoke", help="stop a key working, on every gateway at once")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as list shows it")
    revoke.set_defaults(func=_run(_revoke))


def _scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise UsageError(f"--scopes {text!r}: each must be one of {', '.join(SCOPES)}")
    return scopes


def _tenant(text: str) -> str:
    if not text.replace("_", "").replace("-", "").isalnum() or len(text) > 64:
        raise UsageError(f"--tenant {text!r}: letters, digits, _ or - (at most 64)")
    return text


def _run(action: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        common = CommonConfig.from_env()
        try:
            return int(
                asyncio.run(
                    _with_keys(
                        action,
                        args,
                        require_nats(common),
                        Topology(common.namespace, common.stream_replicas),
                        nats_options(common),
                    )
                )
            )
        except UsageError as exc:
            print(f"syllabus: {exc}", file=sys.stderr)
            return 2
        except UnknownKey as exc:
            print(f"syllabus: no key has the id {exc}", file=sys.stderr)
            return 1
        except (OSError, nats.errors.Error, TimeoutError):
            print("syllabus: cannot reach NATS at SYLLABUS_NATS_URL", file=sys.stderr)
            return 1

    return run


async def _with_keys(
    action: Any, args: argparse.Namespace, url: str, topology: Topology, options: dict[str, Any]
) -> int:
    nc = nats_client()
    await nc.connect(
        url.split(","),
        max_reconnect_attempts=0,
        allow_reconnect=False,
        **{"connect_timeout": CONNECT_TIMEOUT, **options},
    )
    try:
        code: int = await action(ApiKeys(nc, topology), args)
        return code
    finally:
        await nc.close()


async def _create(keys: ApiKeys, args: argparse.Namespace) -> int:
    key, secret = await keys.create(_tenant(args.tenant), _scopes(args.scopes), args.name)
    print(f"key {key.id} for tenant {key.tenant}, scopes {','.join(key.scopes)}", file=sys.stderr)
    print("it is shown this once; send it as Authorization: Bearer <key>", file=sys.stderr)
    print(secret, flush=True)
    return 0


def _row(key: ApiKey) -> str:
    created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(key.created_at))
    return f"{key.id:<14} {key.tenant:<20} {','.join(key.scopes):<22} {created:<17} {key.name}"


async def _list(keys: ApiKeys, args: argparse.Namespace) -> int:
    found = await keys.list()
    if args.json:
        for key in found:
            print(
                json.dumps(
                    {
                        "id": key.id,
                        "tenant": key.tenant,
                        "scopes": list(key.scopes),
                        "name": key.name,
                        "created_at": key.created_at,
                    }
                )
            )
        return 0
    print(f"{'ID':<14} {'TENANT':<20} {'SCOPES':<22} {'CREATED (UTC)':<17} NAME")
    for key in found:
        print(_row(key))
    if not found:
        print("(no keys)", file=sys.stderr)
    return 0


async def _revoke(keys: ApiKeys, args: argparse.Namespace) -> int:
    await keys.revoke(args.key_id)
    print(f"key {args.key_id} revoked", flush=True)
    return 0
