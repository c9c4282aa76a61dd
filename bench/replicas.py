"""W1 and W3 with reads on a streaming replica, beside the same server reading the primary.

    python bench/replicas.py [--rounds 6] [--duration 5] [--users 1000]

Makes a throwaway primary and a hot standby streaming from it (``tests.postgres_server.
streaming_pair``: ``initdb``, then ``pg_basebackup -R``; ``fsync=off``, so the disk is not
what is measured), seeds the harness's ``bench`` database on the primary with the harness's
own ``seed.py`` (the replica receives it by streaming), then runs ``bench/ab.py`` on this
checkout twice, side by side in one run: root 0 reads the primary, root 1 has
``DATABASE_REPLICA_URLS`` naming the replica, so its query operations read there
(``db.replicas``). Every other setting is ``bench/peers.py``'s. Before the load each server's
answers are checked (``ab.check``); the replica's ``/readyz`` must list it as in use.

Both clusters share the machine's two cores with wrk (CPU 1) and the servers (CPU 0): what
this shows is what routing costs Inkwell per request, not a second machine's capacity.
Needs the PostgreSQL server binaries (``initdb``, ``pg_basebackup``) and wrk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import ab
import peers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres_server import streaming_pair  # noqa: E402


def seed(port: int, users: int) -> None:
    """The harness's ``bench`` database on the cluster listening on ``port``."""
    admin = f"postgres://postgres@127.0.0.1:{port}/postgres"
    command = [
        "python3", str(peers.HARNESS / "seed.py"), "--users", str(users), "--admin-dsn", admin,
    ]  # fmt: skip
    subprocess.run(command, cwd=peers.HARNESS, check=True)


def caught_up(primary: int, replica: int, timeout: float = 120) -> None:
    """Wait until the replica has replayed everything the primary has written."""
    import asyncio

    import asyncpg

    async def lag() -> bool:
        source = await asyncpg.connect(f"postgres://postgres@127.0.0.1:{primary}/postgres")
        target = await asyncpg.connect(f"postgres://postgres@127.0.0.1:{replica}/postgres")
        try:
            written = await source.fetchval("SELECT pg_current_wal_lsn()")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                behind = await target.fetchval(
                    "SELECT pg_wal_lsn_diff($1, pg_last_wal_replay_lsn())", written
                )
                if behind <= 0:
                    return True
                await asyncio.sleep(0.2)
            return False
        finally:
            await source.close()
            await target.close()

    if not asyncio.run(lag()):
        raise SystemExit("the replica did not catch up with the seed")


def replica_in_use(port: int) -> None:
    """Raise SystemExit unless the server on ``port`` reports its replica healthy."""
    # The harness's database is not migrated by Inkwell, so /readyz answers 503 "not
    # migrated": its body still lists the replicas.
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as refused:
        body = json.loads(refused.read())
    replicas = body.get("replicas") or []
    if not replicas or any(replica.get("state") != "ok" for replica in replicas):
        raise SystemExit(f"the replica is not in use: /readyz said {body}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--workloads", default="W1,W3")
    args = parser.parse_args(argv)
    with streaming_pair() as (primary, replica):
        seed(primary.port, args.users)
        database = f"postgresql+asyncpg://postgres@127.0.0.1:{primary.port}/bench"
        # ab.py and instructions.py read the harness's database through these two names.
        peers.ENVIRONMENT["DATABASE_URL"] = database
        peers.DSN = f"postgres://postgres@127.0.0.1:{primary.port}/bench"
        ab.instructions.prepare(ROOT)  # the account trigger and the outbox, on the primary
        caught_up(primary.port, replica.port)
        on_replica = f"postgresql+asyncpg://postgres@127.0.0.1:{replica.port}/bench"
        original_check = ab.check

        def check_and_confirm(
            ports: Mapping[str, int], names: Sequence[str], token: str, max_post: int
        ) -> None:
            original_check(ports, names, token, max_post)
            replica_in_use(list(ports.values())[1])

        ab.check = check_and_confirm
        return ab.main(
            [
                "--root", str(ROOT), "--root", str(ROOT),
                "--env", f"1:DATABASE_REPLICA_URLS={on_replica}",
                "--workloads", args.workloads, "--rounds", str(args.rounds),
                "--warmup", str(args.warmup), "--duration", str(args.duration),
            ]
        )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
