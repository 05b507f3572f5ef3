#!/usr/bin/env bash
# The demo: set up what is missing, start the shop baseline, then boot the slice for a change to
# `orders`, print its plan and endpoints, and place one order through the slice's gateway.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh all
stacklet() { .venv/bin/stacklet "$@"; }

echo; echo "== stacklet doctor"; stacklet doctor
echo; echo "== stacklet baseline up --stack shop   (the whole shop, shared by every slice)"
stacklet baseline up --stack shop
echo; echo "== stacklet up orders --stack shop   (the slice for a change to orders; a running one is brought up to date)"
stacklet up orders --stack shop

gateway=$(stacklet status shop-orders --json | .venv/bin/python -c '
import json, sys
status = json.load(sys.stdin)
print(next(e["address"] for s in status["services"] if s["name"] == "gateway" for e in s["endpoints"]))')
echo; echo "== an order through the slice: POST http://$gateway/orders"
.venv/bin/python - "$gateway" <<'PY'
import json, sys, urllib.request
body = json.dumps({"user_id": "u-1", "items": [{"sku": "SKU-0001", "qty": 1}]}).encode()
req = urllib.request.Request(f"http://{sys.argv[1]}/orders", data=body, method="POST",
                             headers={"Content-Type": "application/json", "X-Request-Id": "demo-order-1"})
with urllib.request.urlopen(req, timeout=30) as resp:
    print(resp.status, json.dumps(json.load(resp), indent=2))
PY
echo; echo "== stacklet check shop-orders   (the checks of stack.yaml for orders, and runtime signals: one verdict)"
stacklet check shop-orders
echo
echo "next (with .venv/bin/stacklet): reload orders (after editing stacks/shop/services/orders/app.py), logs --slice shop-orders,"
echo "tui shop-orders, fault apply slow-db --slice shop-orders, check --history, down shop-orders, baseline down --stack shop"
