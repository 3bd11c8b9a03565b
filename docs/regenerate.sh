#!/usr/bin/env bash
# Regenerate every table and figure of the docs from a clean folder: the sweeps, then
# `regbench compare` on each. Figures are copied into docs/; tables are written to
# $WORK/tables/*.md, and pasted by hand into their pages (each page names the command).
# Not a test: reference to decks train about 290 small runs, about 49 minutes on 2 shared CPU
# cores; techniques and transfer 64 more, about 24 minutes; then the claims (benchmarks/RESULTS.md,
# "Regenerating the docs").
#
#   docs/regenerate.sh [WORK] [PARTS]     WORK: a scratch folder (default /tmp/regbench-docs),
#                                         emptied first; PARTS: any of reference tutorial
#                                         examples decks techniques transfer claims (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/regbench-docs}
PARTS=${2:-"reference tutorial examples decks techniques transfer claims"}
PY=${PYTHON:-python}
rm -rf "$WORK" && mkdir -p "$WORK/tables" "$WORK/report"
OUT="$WORK/out"
# one process at a time, no progress bars: the same numbers on any machine, nothing to read on stderr
COMMON=(trainer.progress=none "out_dir=$OUT")

rb() { "$PY" -m regbench "$@"; }
sweep_dir() {  # a study's folder is named <study>-<hash of the overrides>
  local d
  for d in "$OUT/sweeps/$1" "$OUT/sweeps/$1"-*; do
    if [ -d "$d" ]; then echo "$d" && return; fi
  done
  echo "no sweep folder $1 under $OUT/sweeps" >&2 && return 1
}
# compare NAME SWEEP ARGS...: stdout to tables/NAME.md, files and figures to report/NAME/
compare() {
  local name=$1 sweep=$2
  shift 2
  rb compare "$sweep" "$@" --format md --out "$WORK/report/$name" >"$WORK/tables/$name.md"
}
has() { [[ " $PARTS " == *" $1 "* ]]; }
SECONDS=0

if has reference; then
  "$PY" -m regbench.reference --write
fi

if has tutorial; then  # docs/tutorial.md
  rb sweep study=capacity "${COMMON[@]}"
  cap=$(sweep_dir capacity)
  compare capacity-none "$cap" --filter reg=none --metric final_train_acc \
    --curves train_acc,val_acc,val_loss
  compare capacity-overfit "$cap" --filter reg=none --metric overfit_epoch
  compare capacity-gap "$cap" --baseline reg=none --metric gen_gap --summary
  compare capacity-acc "$cap" --baseline reg=none --summary
  compare capacity-widest "$cap" --filter "model.hidden=[1024, 1024]" --curves train_acc,val_acc,val_loss
  cp "$WORK/report/capacity-none/learning_curves.png" docs/tutorial_capacity_curves.png
  cp "$WORK/report/capacity-widest/learning_curves.png" docs/tutorial_capacity_widest_curves.png
  rb sweep study=regime "${COMMON[@]}"
  reg=$(sweep_dir regime)
  compare regime "$reg" --baseline reg=none --summary
  compare regime-clean "$reg" --filter data.label_noise=0.0
  compare regime-noisy "$reg" --filter data.label_noise=0.4
  cp "$WORK/report/regime-clean/test_acc_bars.png" docs/tutorial_regime_clean.png
  cp "$WORK/report/regime-noisy/test_acc_bars.png" docs/tutorial_regime_noisy.png
  echo "tutorial: ${SECONDS}s"
fi

if has examples; then  # docs/comparing.md (and the README): the digits study, the factorial ablation
  rb sweep model=mlp reg=none,l2,dropout,aug,wd seed=0,1,2,3,4,5,6,7,8,9 trainer.epochs=15 "${COMMON[@]}"
  compare digits "$(sweep_dir grid)" --baseline reg=none --summary
  cp "$WORK/report/digits/learning_curves.png" docs/learning_curves.png
  cp "$WORK/report/digits/test_acc_bars.png" docs/test_acc_bars.png
  rb sweep study=factorial trainer.epochs=10 "${COMMON[@]}"
  compare factorial "$(sweep_dir factorial)" --factorial
  cp "$WORK/report/factorial/interactions.png" docs/factorial_interactions.png
  cp "$WORK/report/factorial/effects.csv" docs/factorial_effects.csv
  echo "examples: ${SECONDS}s"
fi

if has decks; then  # docs/decks-studies.md
  for act in tanh relu; do
    rb inspect init=normal_0.01,normal_1,glorot_uniform,he_normal 'model.hidden=[128,128,128,128,128]' \
      "model.activation=$act" --out "docs/init_activation_std_$act.png" >"$WORK/tables/inspect-$act.txt"
  done
  rb sweep study=activations "${COMMON[@]}"
  compare activations "$(sweep_dir activations)" --baseline reg=none --summary
  cp "$WORK/report/activations/learning_curves.png" docs/decks_activations_curves.png
  rb sweep study=init "${COMMON[@]}" || true  # exits 1 by design: relu + N(0, 1) diverges
  compare init "$(sweep_dir init)"
  cp "$WORK/report/init/learning_curves.png" docs/decks_init_curves.png
  rb sweep study=preprocess "${COMMON[@]}"
  compare preprocess "$(sweep_dir preprocess)" --baseline data.preprocess=standardize --summary
  cp "$WORK/report/preprocess/learning_curves.png" docs/decks_preprocess_curves.png
  mnist=${MNIST_ROOT:-../shared/datasets}  # holds MNIST/raw/*-ubyte.gz; skipped where absent
  if [ -d "$mnist/MNIST/raw" ]; then
    rb sweep study=preprocess data=mnist "data.root=$mnist" data.subset=10000 trainer.epochs=10 \
      sweep_name=preprocess-mnist "${COMMON[@]}"
    compare preprocess-mnist "$OUT/sweeps/preprocess-mnist" --baseline data.preprocess=standardize --summary
    cp "$WORK/report/preprocess-mnist/learning_curves.png" docs/decks_preprocess_mnist_curves.png
  else
    echo "no MNIST under $mnist: docs/decks_preprocess_mnist_curves.png left as it is" >&2
  fi
  rb sweep study=ensembles "${COMMON[@]}"
  compare ensembles "$(sweep_dir ensembles)" --ensemble
  cp "$WORK/report/ensembles/ensembles.png" docs/decks_ensembles.png
  echo "decks: ${SECONDS}s"
fi
if has techniques; then  # docs/techniques.md: whitening, multi-task heads
  rb sweep study=whitening "${COMMON[@]}"
  compare whitening "$(sweep_dir whitening)" --baseline data.preprocess=standardize
  rb sweep study=multitask "${COMMON[@]}"
  compare multitask "$(sweep_dir multitask)" --baseline aux=none
  echo "techniques: ${SECONDS}s"
fi
if has transfer; then  # docs/techniques.md: transfer (each study trains its source runs first)
  rb sweep study=transfer "${COMMON[@]}"
  compare transfer "$(sweep_dir transfer)" --baseline transfer=none
  mnist=${MNIST_ROOT:-../shared/datasets}  # MNIST/ and FashionMNIST/ below it; skipped where absent
  if [ -d "$mnist/MNIST/raw" ] && [ -d "$mnist/FashionMNIST/raw" ]; then
    rb sweep study=transfer_mnist "data.root=$mnist" "${COMMON[@]}"
    compare transfer_mnist "$(sweep_dir transfer_mnist)" --baseline transfer=none
  else
    echo "no MNIST and Fashion-MNIST under $mnist: the transfer_mnist table left as it is" >&2
  fi
  echo "transfer: ${SECONDS}s"
fi
if has claims; then  # docs/decks.md: the ledger, written by the command itself (its figures beside it)
  rb claims run --out-dir "$WORK/claims" --ledger docs/decks.md --notes docs/decks-notes.yaml
  "$PY" docs/readme_ledger.py docs/decks.json README.md bn_saturating init_zeros aug_small_data
  echo "claims: ${SECONDS}s"
fi
echo "regenerated in ${SECONDS}s; tables in $WORK/tables"
