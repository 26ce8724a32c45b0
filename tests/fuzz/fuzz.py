"""``make fuzz``: schemathesis over ml-service.yml against the real stack.

Starts redis-server, Celery, Gunicorn and NGINX on free loopback ports (a run
directory of its own under var/fuzz), trains the default model so that
predictions have something to answer with, and runs schemathesis with a
fixed seed and a bounded number of cases per operation as the admin. It
checks that nothing is a server error and that every answer (status, content
type, body) is what the contract says. ``deleteUser`` and ``updateUser`` are
left out: with an admin token they would delete the accounts it finds or
change their passwords, the fuzzing admin's first (revoking its own token).

Schemathesis runs from its own environment (``--st``), never the service's.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from mlservice.config import REPO_DIR, SRC_DIR
from mlservice.stack import Stack, free_port

ADMIN = ("admin", "fuzz-admin-password")
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def start_stack(run_dir: Path) -> Stack:
    """The service with the template's settings, on free ports."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = run_dir / "config.properties"
    shutil.copyfile(SRC_DIR / "config.properties.template", config)
    stack = Stack(
        run_dir=run_dir,
        http_port=free_port(),
        redis_port=free_port(),
        api_port=free_port(),
        config_path=config,
        redis_config_path=run_dir / "redis.properties",
        api_workers=2,
        extra_env={
            "MLSERVICE_ADMIN_USERNAME": ADMIN[0],
            "MLSERVICE_ADMIN_PASSWORD": ADMIN[1],
            "MLSERVICE_SERVICE_ARTIFACT_DIR": str(run_dir / "artifacts"),
        },
    )
    stack.start()
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--st", default="st", help="the schemathesis command")
    parser.add_argument("--examples", type=int, default=25, help="cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run-dir", type=Path, default=REPO_DIR / "var" / "fuzz")
    args = parser.parse_args()
    stack = start_stack(args.run_dir.resolve())
    try:
        token = requests.get(stack.url + "/resource/auth", auth=ADMIN, timeout=30).json()["token"]
        init = requests.get(
            stack.url + "/resource/init",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        )
        init.raise_for_status()
        command = [
            args.st,
            "run",
            str(REPO_DIR / "ml-service.yml"),
            "--url",
            stack.url,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            str(args.examples),
            "--seed",
            str(args.seed),
            "--exclude-operation-id",
            "deleteUser",
            "--exclude-operation-id",
            "updateUser",
            "--workers",
            "2",
            "--rate-limit",
            "auto",
            "--report",
            "junit",
            "--report-dir",
            str(args.run_dir / "report"),
        ]
        print("+", " ".join(c if "Bearer" not in c else "Authorization: Bearer …" for c in command))
        returncode = subprocess.run(command).returncode
    finally:
        stack.stop()
    sys.exit(returncode)


if __name__ == "__main__":
    main()
