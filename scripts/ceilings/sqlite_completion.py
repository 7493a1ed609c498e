"""The ceiling of one task completion per durable commit on SQLite, written by hand.

Runs the statements a completion of the benchmark's 10-task process writes (the instance row
with its snapshot, the task closed and the next one opened, the SLA timer cancelled and the
next one armed, one audit entry), one completion per transaction, against a copy of a
`sopflow bench runtime` database, through Python's sqlite3 (a thin C binding): what the
engine's single-commit figure is compared with. Usage:

    python3 scripts/ceilings/sqlite_completion.py data/bench.db [instances]
"""
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

source = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
work = os.path.join(tempfile.mkdtemp(), "ceiling.db")
shutil.copy(source, work)
db = sqlite3.connect(work, isolation_level=None)
db.execute("PRAGMA journal_mode = WAL")
db.execute("PRAGMA synchronous = FULL")
db.execute("PRAGMA cache_size = -262144")
snapshot = db.execute("SELECT snapshot FROM instances LIMIT 1").fetchone()[0]
entry = db.execute("SELECT entry FROM audit ORDER BY seq DESC LIMIT 1").fetchone()[0]
now = int(time.time() * 1000)
due = now + 4 * 3600 * 1000
roles = ["advisor", "foreman", "technician", "cashier"]

def ids(i, step):
    instance = f"ceiling{i}"
    return instance, f"dealer{i % 1000:04d}", f"{instance}-t{step}", f"{instance}-k{step}"

db.execute("BEGIN")
for i in range(n):
    instance, dealer, task, timer = ids(i, 0)
    db.execute(
        "INSERT INTO instances (id, dealer, process_id, hash, status, revision, prev_revision, snapshot, "
        "started_at, audit_seq, audit_hash) VALUES (?, ?, 'bench10', 'h', 'running', 1, -1, ?, ?, 1, 'x')",
        (instance, dealer, snapshot, now))
    db.execute(
        "INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, priority, "
        "due_at, due_key, created_at) VALUES (?, ?, ?, 'bench10', 's1', 'z', 'e', '[\"advisor\"]', 'normal', ?, ?, ?)",
        (task, instance, dealer, due, due, now))
    db.execute("INSERT INTO timers (id, instance_id, dealer, fire_at) VALUES (?, ?, ?, ?)", (timer, instance, dealer, due))
db.execute("COMMIT")

latencies = []
started = time.time()
for step in range(1, 11):
    for i in range(n):
        instance, dealer, task, timer = ids(i, step)
        _, _, old_task, old_timer = ids(i, step - 1)
        t = time.time()
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE instances SET revision = ?, prev_revision = ?, snapshot = ?, audit_seq = ?, audit_hash = ? "
            "WHERE id = ?", (step + 1, step, snapshot, step + 1, "x" * 64, instance))
        db.execute("DELETE FROM tasks WHERE id = ?", (old_task,))
        db.execute(
            "INSERT INTO tasks (id, instance_id, dealer, process_id, step, title_zh, title_en, roles, priority, "
            "due_at, due_key, created_at) VALUES (?, ?, ?, 'bench10', ?, 'z', 'e', ?, 'normal', ?, ?, ?)",
            (task, instance, dealer, f"s{step}", json.dumps([roles[step % 4]]), due + step, due + step, now))
        db.execute("DELETE FROM timers WHERE id = ?", (old_timer,))
        db.execute("INSERT INTO timers (id, instance_id, dealer, fire_at) VALUES (?, ?, ?, ?)",
                   (timer, instance, dealer, due + step))
        db.execute(
            "INSERT INTO audit (chain, chain_seq, at, actor, kind, step, entry, definition_hash, prev_hash, hash) "
            "VALUES (?, ?, ?, '{\"id\":\"bench\"}', 'task_completed', ?, ?, ?, ?, ?)",
            (instance, step + 1, now, f"s{step}", entry, "d" * 64, "p" * 64, "h" * 64))
        db.execute("COMMIT")
        latencies.append(time.time() - t)
elapsed = time.time() - started
latencies.sort()
count = len(latencies)
print("%d completions, %.0f/s, p50 %.2f ms, p99 %.2f ms" % (
    count, count / elapsed, latencies[count // 2] * 1000, latencies[int(count * 0.99)] * 1000))
shutil.rmtree(os.path.dirname(work))
