#!/usr/bin/env bash
# The CUDA checks in one device call (see benchmarks/README.md, "On a lent GPU"): a solo and a fused
# run on the GPU, member k of the fused run against the solo run with seed k, then the CUDA rows of
# throughput.py. Each step appends to $OUT/gpu_check.md as it ends, so a call cut off by its time
# limit still brings back what was done, and a step that fails does not stop the next (no set -e: one
# device call, no second chance). DEVICE=cpu runs the same steps here, as a dry run.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-/tmp/gpu-check}"
ROUNDS="${ROUNDS:-3}"
SECTIONS="${SECTIONS:-fused,compile}"
mkdir -p "$OUT"
log="$OUT/gpu_check.md"
runlog="$OUT/train.log"  # the runs' own output, apart from the checks
TESTS="${TESTS:-$([[ $DEVICE == cuda ]] && echo 1 || echo 0)}"  # the suite, last (about 2.5 min there)
if ! python3 -c "import hydra, pydantic" 2>/dev/null; then  # the GPU machine lacks them: the wheels
  # into the machine's own environment (it is thrown away after the lease), and the checkout on
  # its path, so that the processes the tests start find both too
  python3 -m pip install -q --no-index --no-deps .whl/*.whl
  echo "$PWD" >"$(python3 -c 'import site; print(site.getsitepackages()[0])')/regbench-checkout.pth"
fi
export PYTHONPATH="$PWD"
step() { echo "## $1 ($(date -u +%H:%M:%S) UTC)" >>"$log"; }

step "machine"
python3 -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
  '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" >>"$log" 2>&1
runs="$OUT/runs"
base=(data=mnist data.root=.devdata data.subset=2000 trainer.epochs=2 "trainer.device=$DEVICE"
  trainer.progress=none)
common=("${base[@]}" trainer.precision=fp32 optim=sgd)  # sgd: see README, "What is equal"

step "solo and fused, fp32, deterministic: member k against the solo run with seed k"
python3 -m regbench train "${common[@]}" 'seed=[0,1,2,3]' "out_dir=$runs/solo" >>"$runlog" 2>&1
python3 -m regbench train "${common[@]}" 'seed=[0,1,2,3]' trainer.fuse=4 "out_dir=$runs/fused" >>"$runlog" 2>&1
python3 - "$runs" >>"$log" 2>&1 <<'EOF'
import csv, sys
from pathlib import Path
from regbench.run.checkpoint import load as load_checkpoint
runs = Path(sys.argv[1])
def rows(run):  # metrics.csv without the timing columns, to 4 decimals
    with open(run / "metrics.csv") as f:
        return [[f"{float(v):.4f}" for k, v in r.items() if k not in ("seconds", "samples_per_s")]
                for r in csv.DictReader(f)]
for solo in sorted((runs / "solo").glob("*-s*")):
    fused = runs / "fused" / solo.name
    a, b = (load_checkpoint(r / "last.pt")["model"] for r in (solo, fused))
    rel = max(((a[k] - b[k]).norm() / a[k].norm().clamp_min(1e-12)).item()
              for k in a if a[k].is_floating_point())
    print(f"{solo.name}: largest relative weight difference {rel:.2e} (CPU test: < 1e-4);"
          f" metrics.csv rows equal to 4 decimals: {rows(solo) == rows(fused)}")
EOF

step "trainer.precision=auto (bf16 on CUDA) on $DEVICE: cnn, channels_last, fused 16"
python3 -m regbench train "${base[@]}" model=cnn trainer.channels_last=true \
  'seed=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]' trainer.fuse=16 "out_dir=$runs/cnn16" >>"$runlog" 2>&1
python3 -c "import json, pathlib; print('test_acc of the 16 members:', [json.loads(p.read_text())['test_acc']
  for p in sorted(pathlib.Path('$runs/cnn16').glob('*/summary.json'))])" >>"$log" 2>&1

step "throughput.py --device $DEVICE --only $SECTIONS --rounds $ROUNDS"
python3 benchmarks/throughput.py --device "$DEVICE" --only "$SECTIONS" --rounds "$ROUNDS" \
  --mnist-root .devdata >>"$log" 2>&1

if [[ $TESTS == 1 ]]; then  # tests/conftest.py hides CUDA: the suite checks the CPU path, here too
  step "pytest -n 14 (MNIST from .devdata)"
  mkdir -p ../shared/datasets && cp -r .devdata/MNIST ../shared/datasets/
  python3 -m pytest -q -n 14 -p no:cacheprovider tests >"$OUT/pytest.log" 2>&1
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/pytest.log" >>"$log"
fi
step "done"
