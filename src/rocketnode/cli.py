"""The ``rocketnode`` command: ``serve``, ``register``, ``demo`` and ``chat``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import signal
import sys
from pathlib import Path

from rocketnode import chat
from rocketnode.app import Node
from rocketnode.config import Config, Listen, load_or_create, with_overrides
from rocketnode.core.errors import MatrixError

logger = logging.getLogger("rocketnode")


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default="rocketnode-data",
                        help="where config, keys and database live (default: ./rocketnode-data)")
    parser.add_argument("--server-name", help="this server's name (written on first start)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rocketnode", description="A Matrix federation node.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the node")
    _add_node_flags(serve)
    serve.add_argument("--client-listen", help="HOST:PORT for clients (default 127.0.0.1:8008)")
    serve.add_argument("--federation-listen",
                       help="HOST:PORT for federation (default 127.0.0.1:8448)")
    serve.add_argument("--open-registration", action="store_true", default=None,
                       help="let anyone register through the client API")
    register = commands.add_parser("register", help="create an account")
    _add_node_flags(register)
    register.add_argument("user", help="user name (localpart) or full user ID")
    register.add_argument("--admin", action="store_true", help="make the account a server admin")
    register.add_argument("--password-env", default="ROCKETNODE_PASSWORD",
                          help="environment variable holding the password (else prompted)")
    demo = commands.add_parser("demo", help="two federating nodes on loopback, talking")
    demo.add_argument("--exit", action="store_true",
                      help="stop after the conversation instead of keeping the nodes running")
    chat.add_parser(commands)
    return parser


def load_config(args: argparse.Namespace) -> Config:
    config = load_or_create(Path(args.data_dir), args.server_name)
    overrides = {
        "server_name": args.server_name,
        "client_listen": Listen.parse(a) if (a := getattr(args, "client_listen", None)) else None,
        "federation_listen": (
            Listen.parse(f) if (f := getattr(args, "federation_listen", None)) else None
        ),
        "open_registration": getattr(args, "open_registration", None),
    }
    return with_overrides(config, **overrides)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def serve(config: Config) -> None:
    """Run until SIGINT or SIGTERM (even one that arrives while starting), then stop cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    node = Node(config)
    await node.start()
    try:
        print(f"RocketNode {config.server_name}: clients on {node.client_url}", flush=True)
        await stop.wait()
        logger.info("Shutting down")
    finally:
        await node.stop()


async def register(config: Config, user: str, password: str, admin: bool) -> str:
    from rocketnode.services.accounts import AccountService
    from rocketnode.services.clock import SystemClock
    from rocketnode.storage.sqlite import open_sqlite

    stores, _db = await open_sqlite(str(config.path(config.database_path)))
    try:
        accounts = AccountService(config.server_name, stores.accounts, SystemClock())
        return await accounts.register(user, password, is_admin=admin)
    finally:
        await stores.close()


def _prompt_password() -> str:
    try:
        return getpass.getpass("Password: ")
    except EOFError:  # nothing to read on stdin
        return ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return _demo(keep_running=not args.exit)
    if args.command == "chat":
        return chat.run(args)
    try:
        config = load_config(args)
    except (ValueError, MatrixError) as exc:
        print(f"rocketnode: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config.log_level)
    if args.command == "serve":
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(serve(config))
        except OSError as exc:  # an address in use, a data directory we may not write, ...
            print(f"rocketnode: cannot start: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "register":
        password = os.environ.get(args.password_env) or _prompt_password()
        if not password:
            print("rocketnode: a password is required", file=sys.stderr)
            return 1
        try:
            user_id = asyncio.run(register(config, args.user, password, args.admin))
        except MatrixError as exc:
            print(f"rocketnode: {exc.message}", file=sys.stderr)
            return 1
        print(f"Registered {user_id}{' (admin)' if args.admin else ''}")
        return 0
    return 2


def _demo(keep_running: bool) -> int:
    from rocketnode.demo import run_demo

    _setup_logging("WARNING")
    try:
        asyncio.run(run_demo(keep_running))
    except (OSError, RuntimeError) as exc:
        print(f"rocketnode demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
