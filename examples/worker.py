#!/usr/bin/env python3
"""An external task worker for sopflow, using only Python's standard library.

Actions named `topic:<topic>` in a process (e.g. `action: topic:dms_sync`) are not run inside
the engine: they wait as external tasks until a worker fetches and locks them, does the work
in whatever system it can reach, and completes or fails them. See docs/plugins.md.

    python3 examples/worker.py --url http://127.0.0.1:8080 --topic dms_sync --worker dms-1

The protocol:

    POST /api/v1/external-tasks/fetch-and-lock  {"worker", "topics", "max", "lock_secs"}
         -> [{"id", "topic", "input", "instance", "dealer", "attempt", "idempotency_key",
              "lock_expires_at"}, ...]
    POST /api/v1/external-tasks/{id}/complete   {"worker", "output"}
         -> 200; 409 when the lock was lost; 422 (problem+json) when the output does not
            match the topic's schema, with every error and its field path
    POST /api/v1/external-tasks/{id}/failure    {"worker", "error", "retryable"}
         -> {"outcome": "retry", "retry_at"} or {"outcome": "incident"}

A worker that dies loses nothing: when its lock expires, the task is handed to the next fetch.
Finish well within `lock_secs`, or the task may be given to another worker (make the work
idempotent on `idempotency_key`).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def post(base_url, path, body, token=None):
    """POSTs JSON and returns (status, decoded body or None)."""
    request = urllib.request.Request(
        base_url.rstrip("/") + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw) if raw else None
        except ValueError:
            return err.code, raw.decode("utf-8", "replace")


class Permanent(Exception):
    """A failure that trying again will not fix (bad data): raise it from a handler."""


def sync_to_dms(task):
    """The work for topic `dms_sync`: replace with a call to the dealer's system."""
    order_no = task["input"].get("order_no")
    if not order_no:
        raise Permanent("the task has no order_no")
    # ... call the DMS here, passing task["idempotency_key"] so a repeat is harmless ...
    return {"synced": True}


HANDLERS = {"dms_sync": sync_to_dms}


def run_once(args, token):
    """Fetches one batch and works through it; returns how many tasks were handled."""
    status, tasks = post(
        args.url,
        "/api/v1/external-tasks/fetch-and-lock",
        {"worker": args.worker, "topics": args.topic, "max": args.max, "lock_secs": args.lock_secs},
        token,
    )
    if status != 200:
        print(f"fetch-and-lock answered {status}: {tasks}", file=sys.stderr)
        return 0
    for task in tasks or []:
        task_id = task["id"]
        handler = HANDLERS.get(task["topic"])
        try:
            if handler is None:
                raise Permanent(f"this worker has no handler for topic {task['topic']}")
            output = handler(task)
        except Permanent as err:
            status, answer = post(args.url, f"/api/v1/external-tasks/{task_id}/failure",
                                  {"worker": args.worker, "error": str(err), "retryable": False}, token)
            print(f"{task_id}: failed for good ({answer})")
            continue
        except Exception as err:  # anything unexpected may pass: let the engine retry with backoff
            status, answer = post(args.url, f"/api/v1/external-tasks/{task_id}/failure",
                                  {"worker": args.worker, "error": repr(err), "retryable": True}, token)
            print(f"{task_id}: failed, {answer}")
            continue
        status, answer = post(args.url, f"/api/v1/external-tasks/{task_id}/complete",
                              {"worker": args.worker, "output": output}, token)
        if status == 422:
            print(f"{task_id}: output refused: {answer}", file=sys.stderr)
        elif status == 409:
            print(f"{task_id}: the lock was lost; another worker has the task", file=sys.stderr)
        else:
            print(f"{task_id}: completed")
    return len(tasks or [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("SOPFLOW_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--topic", action="append", required=True, help="a topic to serve (repeatable)")
    parser.add_argument("--worker", default=os.environ.get("HOSTNAME", "worker-1"))
    parser.add_argument("--max", type=int, default=5, help="tasks per fetch")
    parser.add_argument("--lock-secs", type=int, default=60, help="how long a fetched task stays ours")
    parser.add_argument("--idle-secs", type=float, default=5.0, help="pause after an empty fetch")
    parser.add_argument("--once", action="store_true", help="fetch one batch and stop")
    args = parser.parse_args()
    token = os.environ.get("SOPFLOW_TOKEN")
    while True:
        handled = run_once(args, token)
        if args.once:
            return
        if handled == 0:
            time.sleep(args.idle_secs)


if __name__ == "__main__":
    main()
