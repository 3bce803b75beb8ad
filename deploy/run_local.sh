#!/usr/bin/env bash
# A deployment on one machine, to try it out and measure it: one PostgreSQL, a fleet of judge
# servers (llama.cpp's server with SmolLM2), N `pluralign serve` replicas sharing the database
# and the judgement cache, and nginx in front. Ctrl-C (or the end of --bench) stops everything.
#
#   bash deploy/run_local.sh [--replicas 2] [--judges 2] [--db postgresql://...] [--bench]
#   BENCH_ARGS="--posts 2000" bash deploy/run_local.sh --bench      # options of bench/replicas.py
#
# Without --db it makes a PostgreSQL cluster under $WORK (Debian's postgresql package).
set -euo pipefail
cd "$(dirname "$0")/.."
REPLICAS=2 JUDGES=2 DB="" BENCH=0 WORK="${WORK:-/tmp/pluralign-deploy}" PORT="${PORT:-8100}"
while [ $# -gt 0 ]; do
    case "$1" in
        --replicas) REPLICAS="$2"; shift 2 ;;
        --judges) JUDGES="$2"; shift 2 ;;
        --db) DB="$2"; shift 2 ;;
        --bench) BENCH=1; shift ;;
        *) echo "error: unknown option $1" >&2; exit 2 ;;
    esac
done
PY="${PY:-.venv/bin/python}"
rm -rf "$WORK" && mkdir -p "$WORK/nginx" && chmod 755 "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_for() { for _ in $(seq 1 300); do curl -s -o /dev/null "$1" && return 0; sleep 0.5; done; echo "error: $1 never answered" >&2; exit 1; }

if [ -z "$DB" ]; then   # 1. PostgreSQL (run as the postgres account when this is root)
    BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | tail -1)")
    AS=(); [ "$(id -u)" = 0 ] && { chown postgres "$WORK"; AS=(runuser -u postgres --); }
    "${AS[@]}" "$BIN/initdb" -D "$WORK/pg" -U pluralign --auth trust >/dev/null
    "${AS[@]}" "$BIN/postgres" -D "$WORK/pg" -p 5499 -k "$WORK" -c listen_addresses=127.0.0.1 \
        -c max_connections=200 >"$WORK/pg.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 60); do "$BIN/pg_isready" -q -h 127.0.0.1 -p 5499 && break; sleep 0.5; done
    "$BIN/createdb" -h 127.0.0.1 -p 5499 -U pluralign pluralign
    DB="postgresql://pluralign@127.0.0.1:5499/pluralign"
fi

MODEL=$(.venv/bin/pluralign models fetch smollm2-135m)   # 2. the judge fleet
BASE_URLS=()
for j in $(seq 1 "$JUDGES"); do
    "$PY" -m llama_cpp.server --model "$MODEL" --port $((8200 + j)) --n_ctx 4096 --n_threads 1 \
        >"$WORK/judge$j.log" 2>&1 &
    PIDS+=($!)
    BASE_URLS+=(--base-url "http://127.0.0.1:$((8200 + j))/v1")
done
for j in $(seq 1 "$JUDGES"); do wait_for "http://127.0.0.1:$((8200 + j))/v1/models"; done

UPSTREAMS=""   # 3. the replicas: one database, one judgement cache, every judge
for r in $(seq 1 "$REPLICAS"); do
    .venv/bin/pluralign serve --port $((8100 + r)) --db "$DB" --cache "$DB" --db-pool 8 \
        --method spm-zeroshot --backend openai --model smollm2 "${BASE_URLS[@]}" --concurrency 1 \
        >"$WORK/replica$r.log" 2>&1 &
    PIDS+=($!)
    UPSTREAMS+="        server 127.0.0.1:$((8100 + r)) max_fails=3 fail_timeout=5s;"$'\n'
done
for r in $(seq 1 "$REPLICAS"); do wait_for "http://127.0.0.1:$((8100 + r))/readyz"; done

UPSTREAMS_FILE="$WORK/upstreams.txt"; printf '%s' "$UPSTREAMS" >"$UPSTREAMS_FILE"   # 4. nginx
sed -e "s|@PORT@|$PORT|" -e "s|@PREFIX@|$WORK/nginx|g" -e "/@UPSTREAMS@/{r $UPSTREAMS_FILE" -e "d}" \
    deploy/nginx.conf >"$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/healthz"
echo "pluralign on http://127.0.0.1:$PORT ($REPLICAS replicas, $JUDGES judges, logs in $WORK)"

if [ "$BENCH" = 1 ]; then   # beside them, one replica on its own SQLite file: the embedded default
    .venv/bin/pluralign serve --port 8199 --db "$WORK/users.sqlite" --method random >"$WORK/sqlite.log" 2>&1 &
    PIDS+=($!)
    wait_for "http://127.0.0.1:8199/readyz"
    ONE="http://127.0.0.1:8101" ALL=$(seq -s, -f "http://127.0.0.1:%g" 8101 $((8100 + REPLICAS)))
    "$PY" bench/replicas.py ${BENCH_ARGS:-} --target "sqlite-1-replica=http://127.0.0.1:8199" \
        --target "postgres-1-replica=$ONE" --target "postgres-$REPLICAS-replicas=$ALL" \
        --target "postgres-$REPLICAS-via-nginx=http://127.0.0.1:$PORT" --out bench/results/replicas.json
else
    wait
fi
