# stacklet developer recipes (`just --list`). Each sets up what it needs first.

# the demo: shop baseline, then the slice for a change to orders
demo:
    scripts/demo.sh

# the whole test suite (unit, link proxy, Docker, TUI)
test *ARGS:
    scripts/test.sh {{ARGS}}

# set up the machine: venv, Docker engine, Compose v2, base image
bootstrap:
    scripts/bootstrap.sh all

# the benchmarks (writes bench/results/*.json)
bench:
    .venv/bin/python bench/plan.py
    .venv/bin/python bench/linkproxy.py
    .venv/bin/python bench/slice_vs_full.py

# remove every slice and the shop baseline
clean:
    .venv/bin/stacklet down --all
    -.venv/bin/stacklet baseline down --stack shop
