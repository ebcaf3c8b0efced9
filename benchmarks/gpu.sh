#!/usr/bin/env bash
# One prepared script for a session lent a GPU machine (one NVIDIA H100/H200; 15 minutes of
# device time in all, at most 10 minutes a command): the benchmarks on the GPU and one
# trainer=gpu run of Table VI at a short budget, everything printed and tee'd to
# "${OUT:-/tmp}/gpu_benchmarks.log".
#
#   bash benchmarks/gpu.sh                                  # on the GPU machine
#   ACCELERATOR=cpu DEVICE=cpu QUICK=1 bash benchmarks/gpu.sh   # CPU check of the script
#
# Environment (all optional):
#   ACCELERATOR  trainer accelerator of the table run and sweep.py (gpu | cpu; default gpu)
#   DEVICE       device of data.py and training.py (cuda | cpu | auto; default cuda)
#   QUICK=1      shrink every step (one epoch, a batch or two) to check the script end to end
#   STEPS        which steps, in order, comma-separated (default data,training,table,sweep)
#   BUDGET_S     the whole script's wall-clock cap in seconds (default 540 = 9 min, so one
#                10-minute device command holds it with set-up); each step's timeout is cut
#                to what is left, and a step with under 10 s left is skipped (1800 with QUICK=1)
#   JOBS         sweep.py's --jobs (default 1,2,4; 1 with QUICK=1)
#   SCRATCH      folder for the table run's MLflow store and outputs (default: a temp dir)
#
# Each step has its own timeout and the script goes on past a failed one; a table of every
# step's exit status and seconds ends the log, and the script exits 1 if any step failed.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCELERATOR="${ACCELERATOR:-gpu}"
DEVICE="${DEVICE:-cuda}"
QUICK="${QUICK:-0}"
STEPS="${STEPS:-data,training,table,sweep}"
LOG_DIR="${OUT:-/tmp}"
LOG="$LOG_DIR/gpu_benchmarks.log"
mkdir -p "$LOG_DIR"
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
# On exit, close the pipe to tee and wait for it, so the log is complete when the script ends.
trap 'exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null || true' EXIT
export PYTHONUNBUFFERED=1 # lines reach the log as they are printed, even if a step is killed

# Per-step timeouts (seconds) on the GPU. Expected on an H200 (estimated, not yet measured):
# data.py ~50 s (first-use world generation ~15 s, GeoTIFF reads, five networks' steps),
# training.py ~70 s (five networks, a Lightning epoch and a bare loop each), the table run
# ~160 s (four jobs: start-up, pools read, 2 epochs of 126 batches, full test sets of four
# domains, figures), sweep.py the rest (Table VI launched three times at 1, 2 and 4 jobs,
# then every network's steps). The sum is capped by BUDGET_S; the sweep runs last as the
# largest and the least essential, and can be run alone with STEPS=sweep.
T_DATA=90
T_TRAINING=180
T_TABLE=180
T_SWEEP=240
JOBS_DEFAULT=1,2,4
DATA_ARGS=()
# The speed options, each against float32 on ResU-SENet (compile's first steps take ~1 min).
TRAINING_ARGS=(--options channels_last,bf16,compile)
SWEEP_ARGS=()
TABLE_BUDGET=("trainer.max_epochs=2")
if [[ "$QUICK" == 1 ]]; then
    # CPU check of the script: every step shrunk; timings here mean nothing. The budget is
    # raised (unless BUDGET_S is given) as a CPU is far slower.
    BUDGET_S="${BUDGET_S:-1800}"
    T_DATA=400
    T_TRAINING=300
    T_TABLE=400
    T_SWEEP=600
    JOBS_DEFAULT=1 # one launch: a CPU check, not a measurement
    DATA_ARGS=(--batches 2 --steps 1)
    TRAINING_ARGS=(--batches 1 --seconds 0 --rounds 1 --models cgnet --options none)
    SWEEP_ARGS=(--train-batches 1 --steps 1 --seeds 1)
    TABLE_BUDGET=(
        "trainer.max_epochs=1"
        "++trainer.limit_train_batches=2"
        "++trainer.limit_val_batches=1"
        "++trainer.limit_test_batches=1"
    )
fi
BUDGET_S="${BUDGET_S:-540}"
JOBS="${JOBS:-$JOBS_DEFAULT}"

START=$SECONDS
declare -a SUMMARY=()
FAILED=0

banner() { printf '\n===== %s (%s) =====\n' "$1" "$(date -u +%H:%M:%S)"; }

# run_step NAME TIMEOUT COMMAND...: run with the smaller of TIMEOUT and the budget left,
# record its exit status (124: timed out) and seconds, and go on whatever happens.
run_step() {
    local name="$1" limit="$2"
    shift 2
    local left=$((BUDGET_S - (SECONDS - START)))
    if ((limit > left)); then
        limit=$left
    fi
    banner "$name (timeout ${limit} s)"
    echo "+ $*"
    if ((limit < 10)); then
        echo "skipped: ${left} s of the ${BUDGET_S} s budget left"
        SUMMARY+=("$(printf '%-10s %5s %6s' "$name" skip 0)")
        FAILED=1
        return 0
    fi
    local begin=$SECONDS rc=0
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    local took=$((SECONDS - begin))
    if ((rc != 0)); then
        FAILED=1
    fi
    if ((rc == 124 || rc == 137)); then
        echo "timed out after ${limit} s"
    fi
    echo "== $name: rc=$rc, ${took} s"
    SUMMARY+=("$(printf '%-10s %5d %6d' "$name" "$rc" "$took")")
}

wants() { [[ ",$STEPS," == *",$1,"* ]]; }

banner "machine"
echo "ACCELERATOR=$ACCELERATOR DEVICE=$DEVICE QUICK=$QUICK STEPS=$STEPS BUDGET_S=$BUDGET_S"
echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "($(git status --porcelain 2>/dev/null | wc -l) changed paths)"
echo "CPU cores: $(nproc)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi || true
else
    echo "nvidia-smi: not found"
fi

# The Python environment: the project's own (uv, the README's set-up) where it can be made;
# else, on a machine with no network (the lent GPU machines), the image's python3 (which
# holds torch) with the project's other packages carried as wheels in .whl/ (see
# benchmarks/README.md).
banner "setup"
PY=()
if [[ -d .venv ]] && python3 -m uv --version >/dev/null 2>&1; then
    PY=(python3 -m uv run python)
elif [[ -d .whl ]]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || echo "installing the carried wheels failed"
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    PY=(python3)
else
    export UV_HTTP_TIMEOUT=20
    if timeout 60 python3 -m pip install -q --timeout 10 uv &&
        timeout 240 python3 -m uv sync; then
        PY=(python3 -m uv run python)
    else
        echo "uv could not be installed or synced (no network?): using python3 as it is"
        export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
        PY=(python3)
    fi
fi
echo "python: ${PY[*]} (set-up took $((SECONDS - START)) s)"
"${PY[@]}" - <<'EOF' || true
import importlib.util
import platform

import torch

print(f"python {platform.python_version()}, torch {torch.__version__}, "
      f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    print(f"GPU: {torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.0f} GiB, "
          f"{props.multi_processor_count} SMs")
else:
    print("GPU: none visible to torch")
needed = ("lightning", "hydra", "omegaconf", "mlflow", "torchgeo", "rasterio", "geopandas",
          "pyogrio", "shapely", "pyproj", "kornia", "segmentation_models_pytorch",
          "torchmetrics", "hydra_plugins.hydra_joblib_launcher", "landslide")
missing = [m for m in needed if importlib.util.find_spec(m.split(".")[0]) is None
           or (m.startswith("hydra_plugins.") and importlib.util.find_spec(m) is None)]
print("missing packages: " + (", ".join(missing) if missing else "none"))
EOF

# (a) Does data ever wait? The networks' training steps on DEVICE.
if wants data; then
    run_step data "$T_DATA" "${PY[@]}" benchmarks/data.py --device "$DEVICE" "${DATA_ARGS[@]}"
fi

# (b) What Lightning adds, per network, on DEVICE.
if wants training; then
    run_step training "$T_TRAINING" \
        "${PY[@]}" benchmarks/training.py --device "$DEVICE" "${TRAINING_ARGS[@]}"
fi

# (d) Table VI with trainer=gpu at a short budget, into a scratch MLflow store; then each
# run's test F1 per domain from MLflow.
if wants table; then
    SCRATCH="${SCRATCH:-$(mktemp -d -t landslide-gpu-XXXXXX)}"
    echo "scratch store and outputs: $SCRATCH"
    run_step table "$T_TABLE" env -u MLFLOW_TRACKING_URI "${PY[@]}" train.py -m \
        experiment=table6 trainer=gpu "trainer.accelerator=$ACCELERATOR" \
        "${TABLE_BUDGET[@]}" trainer.enable_progress_bar=false \
        ++trainer.enable_model_summary=false \
        "paths.mlruns_dir=$SCRATCH/mlruns" "hydra.sweep.dir=$SCRATCH/multirun"
    banner "table: runs in $SCRATCH/mlruns"
    "${PY[@]}" - "$SCRATCH/mlruns/mlflow.db" <<'EOF' || echo "reading the runs failed"
import sys
from pathlib import Path

import mlflow

db = Path(sys.argv[1])
if not db.exists():
    sys.exit(f"no store at {db}: the table run logged nothing")
client = mlflow.MlflowClient(f"sqlite:///{db}")
experiment = client.get_experiment_by_name("landslide")
runs = client.search_runs([experiment.experiment_id]) if experiment else []
tests = {k for r in runs for k in r.data.metrics if k.startswith("test/") and k.endswith("/f1")}
domains = sorted(k.split("/")[1] for k in tests)
print(f"{'run':<28} {'status':<9} {'complete':<8} {'s':>6} " +
      " ".join(f"{'F1 ' + d:>14}" for d in domains))
for run in sorted(runs, key=lambda r: r.info.run_name or ""):
    end = run.info.end_time or run.info.start_time
    seconds = (end - run.info.start_time) / 1000
    complete = run.data.tags.get("landslide.complete", "-")
    f1 = " ".join(f"{run.data.metrics.get(f'test/{d}/f1', float('nan')):14.4f}"
                  for d in domains)
    print(f"{run.info.run_name:<28} {run.info.status:<9} {complete:<8} {seconds:6.1f} {f1}")
print(f"{len(runs)} runs")
EOF
fi

# (c) A sweep serial against parallel on one device, and the paper tables projected.
if wants sweep; then
    run_step sweep "$T_SWEEP" "${PY[@]}" benchmarks/sweep.py --experiment table6 \
        --accelerator "$ACCELERATOR" --jobs "$JOBS" "${SWEEP_ARGS[@]}"
fi

banner "summary"
printf '%-10s %5s %6s\n' step rc s
printf '%s\n' "${SUMMARY[@]}"
echo "total $((SECONDS - START)) s; log: $LOG"
exit "$FAILED"
