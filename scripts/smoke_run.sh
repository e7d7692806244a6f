#!/usr/bin/env bash
# Smoke test of the README's first command on the embedded default: a fresh clone,
# `make run`, then /healthz must report database, broker and worker as fine, and every
# demo user must log in and reach their home page.  Stops everything it started.
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
PORT="${SMOKE_PORT:-8765}"
stop_run() {
  # SIGTERM to make and supervisord, which stops the web server and the worker (each in
  # its own process group) before it exits; SIGKILL only if that takes over 20 s.
  kill -- -"$RUN_PID" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 -- -"$RUN_PID" 2>/dev/null || break; sleep 0.5; done
  kill -9 -- -"$RUN_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop_run EXIT

git clone --quiet "$SRC" "$WORK/attune"
cd "$WORK/attune"
start=$(date +%s)
# A new process group, so the trap stops make and supervisord (which stops the rest).
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL -u ATTUNE_VAR_DIR ATTUNE_PORT="$PORT" \
  setsid make run > "$WORK/run.log" 2>&1 &
RUN_PID=$!

for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" -o "$WORK/health.json" 2>/dev/null; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then echo "make run exited:"; tail -50 "$WORK/run.log"; exit 1; fi
  sleep 1
done
if ! [ -s "$WORK/health.json" ]; then echo "healthz never answered 200:"; tail -50 "$WORK/run.log"; curl -sS "http://127.0.0.1:$PORT/healthz" || true; exit 1; fi
echo "make run healthy after $(( $(date +%s) - start ))s: $(cat "$WORK/health.json")"

.venv/bin/python scripts/smoke_logins.py "http://127.0.0.1:$PORT"
echo "smoke: OK"
