"""The pure parts of the inner loop: reconcile labels and diff, the part to start, file → service for --watch."""

from __future__ import annotations

from pathlib import Path

from stacklet.planning.plan import stack_labels
from stacklet.labels import Label
from stacklet.planning.plan import make_plan
from stacklet.planning.render import render
from stacklet.planning.reconcile import SLICE_LABELS_KEPT, classify, keep_slice_labels, to_start
from stacklet.runtime.watch import built_services, services_to_reload, watch_roots

from ..conftest import SHOP_DIR, service

CREATED, CHANGED, DEADLINE = Label.CREATED, Label.CHANGED, Label.BOOT_DEADLINE


def rendered(shop, changed: list[str], created: str, **extra: str) -> dict:
    plan = make_plan(shop, changed)
    spec = render(plan, shop, "s1", labels={CREATED: created, CHANGED: ",".join(plan.changed),
                                            **stack_labels(shop), **extra})
    return spec


def test_a_reconcile_of_an_unchanged_slice_renders_exactly_the_running_project(shop):
    # the first boot: its labels also carry a boot deadline, written after rendering
    first = rendered(shop, ["orders"], "2026-01-01T10:00:00Z")
    for section in ("services", "networks", "volumes"):
        for item in (first.get(section) or {}).values():
            if isinstance(item, dict) and "labels" in item:
                item["labels"][DEADLINE] = "2026-01-01T10:05:00Z"
    running = first["services"]["orders.origin"]["labels"]
    again = keep_slice_labels(rendered(shop, ["orders"], "2026-03-03T12:00:00Z"), running)
    assert again == first  # same labels, so Compose's config hashes match and nothing is recreated


def test_services_keep_the_age_but_take_the_new_changed_list_networks_keep_everything(shop):
    old = rendered(shop, ["orders"], "2026-01-01T10:00:00Z")["services"]["orders.origin"]["labels"]
    new = keep_slice_labels(rendered(shop, ["payments"], "2026-03-03T12:00:00Z"), old)
    payments = new["services"]["payments.origin"]["labels"]
    assert payments[CREATED] == "2026-01-01T10:00:00Z"
    assert payments[CHANGED] == "payments"
    assert new["networks"]["default"]["labels"][CHANGED] == "orders"
    assert new["networks"]["default"]["labels"][CREATED] == "2026-01-01T10:00:00Z"
    assert CREATED in SLICE_LABELS_KEPT


def test_keep_slice_labels_does_not_touch_its_input(shop):
    spec = rendered(shop, ["orders"], "2026-03-03T12:00:00Z")
    keep_slice_labels(spec, {CREATED: "2020-01-01T00:00:00Z"})
    assert spec["services"]["orders.origin"]["labels"][CREATED] == "2026-03-03T12:00:00Z"


def test_classify_names_what_happened_to_each_service():
    before = {"orders": ("c1", "img1"), "orders-db": ("c2", "pg"), "payments": ("c3", "img3"),
              "stacklet-link-1": ("c4", "lp"), "old": ("c5", "x"), "redis": ("c6", "r")}
    after = {"orders": ("c1", "img1", True),            # same container, running
             "orders-db": ("c2", "pg", False),           # same container, stopped
             "payments": ("c7", "img3b", True),          # new container, new built image
             "stacklet-link-1": ("c8", "lp", True),      # new container, same image: its config changed
             "redis": ("c9", "r2", True),                # new image, but not a built service
             "inventory": ("c10", "img9", True)}         # not there before
    assert classify(before, after, buildable={"orders", "payments", "inventory"}) == {
        "orders": "unchanged", "orders-db": "started", "payments": "rebuilt", "stacklet-link-1": "recreated",
        "redis": "recreated", "inventory": "added", "old": "removed"}


def test_to_start_keeps_only_dependencies_that_start_too():
    services = {
        "orders": service("o", depends_on={"orders-db": {"condition": "service_healthy"}, "link": {}}),
        "orders-db": service("pg"),
        "link": service("lp"),
        "payments": service("p", depends_on=["link"]),
    }
    part = to_start(services, {"orders", "orders-db", "gone"})
    assert set(part) == {"orders", "orders-db"}
    assert part["orders"]["depends_on"] == {"orders-db": {"condition": "service_healthy"}}
    assert "depends_on" not in part["orders-db"]
    assert "link" in services["orders"]["depends_on"]  # the input is left alone
    assert to_start(services, {"payments"}) == {"payments": {k: v for k, v in services["payments"].items()
                                                             if k != "depends_on"}}


def test_shop_files_map_to_the_services_that_reload(shop):
    services = built_services(shop, ["orders", "payments", "orders-db", "redis", "nope"])
    assert services == ["orders", "payments", "orders-db", "redis"]  # the shop builds its databases too
    app = SHOP_DIR / "services" / "orders" / "app.py"
    assert services_to_reload(shop, ["orders", "payments"], [app]) == ["orders"]
    assert services_to_reload(shop, ["orders", "payments"], [str(app)]) == ["orders"]
    # stack.yaml paths: the shared Dockerfile belongs to every Python service
    assert services_to_reload(shop, ["payments", "orders"], [SHOP_DIR / "services" / "Dockerfile"]) == \
        ["payments", "orders"]
    assert services_to_reload(shop, ["orders"], [SHOP_DIR / "services" / "users" / "app.py"]) == []
    assert services_to_reload(shop, ["orders"], [SHOP_DIR / "README.md"]) == []


def test_watch_roots_are_contexts_and_glob_folders_without_nesting(shop):
    assert watch_roots(shop, ["orders", "payments"]) == [(SHOP_DIR / "services").resolve()]
    assert watch_roots(shop, ["orders-db"]) == [(SHOP_DIR / "images" / "postgres").resolve()]
    assert watch_roots(shop, []) == []


def test_watch_roots_and_mapping_of_a_stack_without_paths(make_stack, tmp_path: Path):
    for name in ("api", "worker"):
        (tmp_path / name).mkdir()
    stack = make_stack({"api": service(build=str(tmp_path / "api")),
                        "worker": service(build=str(tmp_path / "worker")),
                        "db": service("postgres:16")},
                       meta={"services": {"worker": {"paths": ["shared/*.py"]}}})
    (tmp_path / "shared").mkdir()
    assert built_services(stack, ["api", "worker", "db"]) == ["api", "worker"]
    assert watch_roots(stack, ["api", "worker"]) == [(tmp_path / n).resolve() for n in ("api", "shared", "worker")]
    assert watch_roots(stack, ["api"]) == [(tmp_path / "api").resolve()]
    # a glob under a folder that does not exist yet: its parent is watched, so the folder's creation is seen
    later = make_stack({"api": service(build=str(tmp_path / "api"))},
                       meta={"services": {"api": {"paths": ["later/*.py"]}}})
    assert watch_roots(later, ["api"]) == [tmp_path.resolve()]
    assert services_to_reload(stack, ["api", "worker"], [tmp_path / "shared" / "util.py"]) == ["worker"]
    assert services_to_reload(stack, ["api", "worker"], [tmp_path / "api" / "main.py",
                                                         tmp_path / "worker" / "x.py"]) == ["api", "worker"]
    assert services_to_reload(stack, ["api"], [tmp_path / "shared" / "util.py"]) == []
