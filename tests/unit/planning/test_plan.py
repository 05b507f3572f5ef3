"""plan.py and render.py: SlicePlan (local, forwarded, link proxies, routes), render() and render_baseline()."""

from __future__ import annotations

import json

import pytest

from stacklet.errors import PlanError
from stacklet.planning.graph import ServiceGraph
from stacklet.planning.plan import (
    CONTROL_PORT,
    default_linkproxy_image,
    SlicePlan,
    default_slice_name,
    make_plan,
    validate_slice_name,
)
from stacklet.planning.render import render, render_baseline
from stacklet.labels import baseline_project_name, slice_project_name
from stacklet.config.stack import BaselineConfig, LinkProxyConfig

from ..conftest import compose_accepts, named_volume, service

ORDERS_LOCAL = {"orders": "changed", "gateway": "caller", "payments": "callee", "inventory": "callee",
                "orders-db": "callee", "redis": "callee", "inventory-db": "stateful"}
LABEL_KEYS = ("dev.stacklet.slice", "dev.stacklet.stack", "dev.stacklet.service", "dev.stacklet.role")


def with_meta(stack, **changes):
    """A copy of ``stack`` with some stack.yaml fields replaced."""
    return stack.model_copy(update={"meta": stack.meta.model_copy(update=changes)})


def all_ports(project):
    for name, spec in project["services"].items():
        for port in spec.get("ports", []):
            yield name, port


@pytest.fixture
def orders_plan(shop):
    return make_plan(shop, ["orders"])


# --------------------------------------------------------------------------------------------
# the plan


class TestShopPlan:
    def test_local_and_forwarded(self, orders_plan):
        assert {s.name: s.role for s in orders_plan.local} == ORDERS_LOCAL
        assert [f.name for f in orders_plan.forwarded] == ["catalog", "fraud", "users"]
        assert orders_plan.stack == "shop" and orders_plan.changed == ["orders"] and orders_plan.radius == 1
        assert orders_plan.source.endswith("stack.yaml")
        assert orders_plan.baseline_project == "stacklet-baseline-shop"
        assert orders_plan.linkproxy_image == default_linkproxy_image()

    def test_local_order_is_changed_caller_callee_stateful(self, orders_plan):
        assert [s.name for s in orders_plan.local] == ["orders", "gateway", "inventory", "orders-db", "payments",
                                                       "redis", "inventory-db"]

    def test_ports_and_stateful_flags(self, orders_plan):
        local = {s.name: s for s in orders_plan.local}
        assert local["orders"].ports == [8081] and local["gateway"].ports == [8080]
        assert local["orders-db"].ports == [5432] and local["redis"].ports == [6379]
        assert {n for n, s in local.items() if s.stateful} == {"orders-db", "inventory-db", "redis"}
        assert "declared stateful in stack.yaml" in local["orders-db"].reasons
        assert {f.name: f.ports for f in orders_plan.forwarded} == {"catalog": [8084], "fraud": [8086],
                                                                     "users": [8085]}

    def test_two_proxies_because_two_databases_share_5432(self, orders_plan):
        assert len(orders_plan.proxies) == 2
        proxy_of = {t: p.name for p in orders_plan.proxies for t in p.targets}
        assert proxy_of["orders-db"] != proxy_of["inventory-db"]
        assert set(proxy_of) == {"orders", "payments", "inventory", "orders-db", "redis", "inventory-db",
                                 "catalog", "fraud", "users"}
        assert "gateway" not in proxy_of  # nobody in the slice calls it
        for proxy in orders_plan.proxies:
            ports = [r.port for r in proxy.routes]
            assert len(ports) == len(set(ports))
            assert proxy.name.startswith("stacklet-link-")

    def test_behind_proxy(self, orders_plan):
        local = {s.name: s for s in orders_plan.local}
        assert not local["gateway"].behind_proxy and local["gateway"].compose_name == "gateway"
        for name in ORDERS_LOCAL.keys() - {"gateway"}:
            assert local[name].behind_proxy
            assert local[name].compose_name == f"{name}.origin"

    def test_routes(self, orders_plan):
        routes = {r.target: r for p in orders_plan.proxies for r in p.routes}
        assert routes["orders-db"].upstream == "orders-db.origin:5432"
        assert routes["payments"].upstream == "payments.origin:8082"
        assert routes["inventory-db"].upstream == "inventory-db.origin:5432"
        assert routes["catalog"].upstream == "catalog.baseline:8084"
        assert routes["fraud"].upstream == "fraud.baseline:8086"
        assert routes["users"].upstream == "users.baseline:8085"
        for target, route in routes.items():
            assert route.name == target  # one port each
            assert route.port == int(route.upstream.rsplit(":", 1)[1])

    def test_links(self, orders_plan):
        proxy_of = {t: p.name for p in orders_plan.proxies for t in p.targets}
        links = {(ln.source, ln.target): ln for ln in orders_plan.links}
        assert len(links) == len(orders_plan.links) == 10
        assert links["gateway", "catalog"].kind == "forwarded"
        assert links["payments", "fraud"].kind == "forwarded"
        assert links["orders", "orders-db"].kind == "local"
        for (_, target), link in links.items():
            assert link.proxy == proxy_of[target]

    def test_forwarded_go_to_the_local_baseline(self, orders_plan):
        for svc in orders_plan.forwarded:
            assert svc.baseline == "local"
            assert svc.address == f"{svc.name}.baseline:{svc.ports[0]}"
        assert orders_plan.uses_local_baseline
        # forwarded services that write to stores of their own are named, with the stores
        assert {f.name: f.writes_to for f in orders_plan.forwarded if f.writes_to} == {
            "catalog": ["catalog-db"], "users": ["redis"]}
        writes = [n for n in orders_plan.notes if "writes to the baseline's" in n]
        assert len(writes) == 2
        # the only other note: the shop's stack.yaml checks every 5 s, not every 1 s as compose.yaml says
        assert [n for n in orders_plan.notes if n not in writes] == [
            "Docker runs the healthchecks of gateway, inventory, inventory-db, orders, orders-db, payments, redis "
            "every 5s here, not every 1s (stack.yaml healthchecks.min_interval; retries scaled to keep the time to "
            "unhealthy); readiness is probed on demand, so boots do not wait for it"]

    def test_remote_baseline_addresses(self, shop):
        stack = with_meta(shop, baseline=BaselineConfig(addresses={"catalog": "catalog.staging.example:443",
                                                                   "fraud": "10.0.0.9:8086"}))
        plan = make_plan(stack, ["orders"])
        forwarded = {f.name: f for f in plan.forwarded}
        assert forwarded["catalog"].baseline == "remote"
        assert forwarded["catalog"].address == "catalog.staging.example:443"
        assert forwarded["users"].baseline == "local"
        routes = {r.target: r for p in plan.proxies for r in p.routes}
        assert routes["catalog"].upstream == "catalog.staging.example:443"
        assert routes["fraud"].upstream == "10.0.0.9:8086"
        assert routes["users"].upstream == "users.baseline:8085"
        assert routes["orders-db"].upstream == "orders-db.origin:5432"
        assert routes["catalog"].port == 8084  # the slice still reaches it on its own port

    def test_radius_and_several_changed(self, shop):
        plan = make_plan(shop, ["orders", "catalog"], radius=0)
        assert plan.radius == 0 and plan.changed == ["orders", "catalog"]
        assert {s.name: s.role for s in plan.local} == {"orders": "changed", "catalog": "changed",
                                                         "orders-db": "stateful", "redis": "stateful",
                                                         "catalog-db": "stateful"}
        assert [f.name for f in plan.forwarded] == ["inventory", "payments"]
        # orders-db and catalog-db share 5432
        assert len(plan.proxies) == 2

    def test_errors(self, shop):
        with pytest.raises(PlanError):
            make_plan(shop, ["shipping"])
        with pytest.raises(PlanError):
            make_plan(shop, ["orders"], radius=-1)
        with pytest.raises(PlanError):
            make_plan(shop, [])

    def test_a_given_graph_is_used(self, shop):
        graph = ServiceGraph.from_stack(shop)
        assert make_plan(shop, ["orders"], graph=graph) == make_plan(shop, ["orders"])

    def test_linkproxy_image_from_stack_yaml(self, shop):
        stack = with_meta(shop, linkproxy=LinkProxyConfig(image="ghcr.io/shopify/toxiproxy:2.9.0"))
        plan = make_plan(stack, ["orders"])
        assert plan.linkproxy_image == "ghcr.io/shopify/toxiproxy:2.9.0"
        proxy = render(plan, stack, "t")["services"]["stacklet-link-1"]
        assert proxy["image"] == "ghcr.io/shopify/toxiproxy:2.9.0"
        assert "build" not in proxy
        assert proxy["command"] == ["-host=0.0.0.0", f"-port={CONTROL_PORT}"]


class TestPlanJson:
    def test_shape(self, orders_plan):
        data = json.loads(json.dumps(orders_plan.model_dump(mode="json")))
        assert set(data) == {"stack", "source", "changed", "radius", "local", "forwarded", "links", "proxies",
                             "linkproxy_image", "baseline_project", "edges", "active_profiles", "inactive_services",
                             "boot_blockers", "stack_options", "notes"}
        assert set(data["local"][0]) == {"name", "role", "reasons", "ports", "udp_ports", "stateful", "stateful_rule",
                                         "job", "healthcheck", "healthcheck_interval_s", "behind_proxy", "depends_on",
                                         "starts_after", "seed_after"}
        assert set(data["forwarded"][0]) == {"name", "reasons", "ports", "address", "baseline", "writes_to", "engine",
                                             "started", "port_addresses"}
        assert set(data["links"][0]) == {"source", "target", "kind", "proxy"}
        assert set(data["proxies"][0]) == {"name", "targets", "routes"}
        assert set(data["proxies"][0]["routes"][0]) == {"name", "target", "port", "upstream"}
        assert data["local"][0] == {"name": "orders", "role": "changed", "reasons": ["changed"], "ports": [8081],
                                    "udp_ports": [], "stateful": False, "stateful_rule": None, "job": False,
                                    "healthcheck": "compose", "healthcheck_interval_s": 5.0, "behind_proxy": True,
                                    "depends_on": [{"service": "orders-db", "condition": "service_healthy",
                                                    "required": True, "local": True},
                                                   {"service": "redis", "condition": "service_healthy",
                                                    "required": True, "local": True}],
                                    "starts_after": ["inventory", "payments"], "seed_after": []}
        assert data["forwarded"][0] == {"name": "catalog", "reasons": ["dependency of local gateway",
                                                                       "forwarded catalog may write to the baseline's "
                                                                       "catalog-db"],
                                        "ports": [8084], "address": "catalog.baseline:8084", "baseline": "local",
                                        "writes_to": ["catalog-db"], "engine": None, "started": None,
                                        "port_addresses": {}}
        edge = next(e for e in data["edges"] if (e["source"], e["target"]) == ("orders", "orders-db"))
        assert edge["weak"] is False and edge["followed"] is True
        assert {"kind": "env", "key": "services.orders.environment.DATABASE_URL", "variable": "DATABASE_URL",
                "file": "compose.yaml", "weak": False} in edge["origins"]

    def test_round_trip(self, orders_plan):
        again = SlicePlan.model_validate_json(orders_plan.model_dump_json())
        assert again == orders_plan


# --------------------------------------------------------------------------------------------
# plans of small in-memory stacks


class TestPlanDetails:
    def test_without_stack_yaml_forwarded_have_no_address(self, make_stack):
        stack = make_stack({"web": service("x/web", environment={"API": "http://api:8000"}),
                            "api": service("x/api", environment={"X": "http://x:9000"}),
                            "x": service("x/x")}, with_stack_file=False)
        plan = make_plan(stack, ["web"], radius=0)
        (api,) = plan.forwarded
        assert api.name == "api" and api.baseline == "none" and api.address is None
        assert any("api is forwarded but has no baseline address" in n and "baseline.addresses.api" in n
                   for n in plan.notes)
        assert plan.proxies[0].routes[0].upstream == "api.baseline:8000"
        assert plan.uses_local_baseline

    def test_no_port_known(self, make_stack):
        stack = make_stack({"web": service("x/web", environment={"API": "http://api", "WORKER_HOST": "worker"}),
                            "api": service("x/api"), "worker": service("x/worker")})
        plan = make_plan(stack, ["web", "worker"], radius=0)
        assert plan.proxies == []
        assert {(ln.target, ln.kind, ln.proxy) for ln in plan.links} == {("api", "forwarded", None),
                                                                         ("worker", "local", None)}
        notes = " | ".join(plan.notes)
        assert "no port is known for api (forwarded, so it is unreachable" in notes
        assert "no port is known for worker (local, so it is reached directly" in notes
        assert "services.api" in notes
        assert not plan.local_service("worker").behind_proxy

    def test_no_note_for_plain_depends_on_without_port(self, make_stack):
        stack = make_stack({"web": service("x/web", depends_on=["init"]), "init": service("x/init")})
        assert make_plan(stack, ["web"]).notes == []

    def test_several_ports_make_one_route_each(self, make_stack):
        stack = make_stack({"web": service("x/web", environment={"A": "http://api:8000", "B": "api:9000"}),
                            "api": service("x/api")},
                           meta={"baseline": {"addresses": {"api": "api.remote:1234"}}})
        plan = make_plan(stack, ["web"], radius=0)
        routes = plan.proxies[0].routes
        assert [(r.name, r.port, r.upstream) for r in routes] == [("api:8000", 8000, "api.remote:8000"),
                                                                   ("api:9000", 9000, "api.remote:9000")]
        assert not plan.uses_local_baseline

    def test_first_fit_packing(self, make_stack):
        stack = make_stack({
            "app": service("x/app", environment={"A": "http://a:80", "B": "http://b:80", "C": "http://c:81",
                                                 "D": "http://d:80"}),
            "a": service("x/a"), "b": service("x/b"), "c": service("x/c"), "d": service("x/d"),
        })
        plan = make_plan(stack, ["app"])
        assert [p.targets for p in plan.proxies] == [["a", "c"], ["b"], ["d"]]

    def test_local_service_lookup(self, orders_plan):
        assert orders_plan.local_service("gateway").role == "caller"
        assert orders_plan.local_service("catalog") is None


class TestSliceNames:
    def test_default_slice_name(self, orders_plan):
        assert default_slice_name(orders_plan) == "shop-orders"
        plan = orders_plan.model_copy(update={"changed": ["Orders_Svc", "x" * 60]})
        name = default_slice_name(plan)
        assert validate_slice_name(name) == name
        assert name.startswith("shop-orders_svc-")

    @pytest.mark.parametrize("name", ["shop-orders", "a", "a_b-1", "x" * 48])
    def test_valid(self, name):
        assert validate_slice_name(name) == name

    @pytest.mark.parametrize("name", ["", "Shop", "-a", "a b", "a.b", "x" * 49])
    def test_invalid(self, name):
        with pytest.raises(PlanError) as info:
            validate_slice_name(name)
        assert "lower-case" in info.value.hint

    def test_project_names(self):
        assert slice_project_name("shop-orders") == "stacklet-shop-orders"
        assert baseline_project_name("shop") == "stacklet-baseline-shop"


# --------------------------------------------------------------------------------------------
# render()


class TestRenderShop:
    @pytest.fixture
    def project(self, orders_plan, shop):
        return render(orders_plan, shop, "shop-orders", labels={"dev.stacklet.ttl": "3600"})

    def test_services(self, project, orders_plan):
        assert project["name"] == "stacklet-shop-orders"
        assert set(project["services"]) == {"orders.origin", "gateway", "payments.origin", "inventory.origin",
                                            "orders-db.origin", "redis.origin", "inventory-db.origin",
                                            "stacklet-link-1", "stacklet-link-2"}

    def test_proxies_own_the_names(self, project, orders_plan):
        for proxy in orders_plan.proxies:
            spec = project["services"][proxy.name]
            assert spec["networks"]["default"]["aliases"] == proxy.targets
            assert spec["image"] == orders_plan.linkproxy_image == default_linkproxy_image()
            assert spec["image"].startswith("stacklet/linkproxy:")
            assert spec["command"] == ["--host", "0.0.0.0", "--port", str(CONTROL_PORT)]
            assert [p["target"] for p in spec["ports"]] == [CONTROL_PORT]
            assert spec["labels"]["dev.stacklet.role"] == "linkproxy"
            assert spec["labels"]["dev.stacklet.targets"] == ",".join(proxy.targets)
            assert json.loads(spec["labels"]["dev.stacklet.routes"]) == [r.model_dump() for r in proxy.routes]
        aliases = [a for p in orders_plan.proxies for a in project["services"][p.name]["networks"]["default"]["aliases"]]
        assert sorted(aliases) == sorted(set(aliases))
        # no local container keeps a name that a proxy owns
        for name, spec in project["services"].items():
            if not name.startswith("stacklet-link-"):
                assert name not in aliases
                assert not (spec["networks"]["default"] or {}).get("aliases")

    def test_the_proxy_joins_the_baseline_network_for_forwarded_targets(self, project, orders_plan):
        proxy_of = {t: p.name for p in orders_plan.proxies for t in p.targets}
        assert "baseline" in project["services"][proxy_of["catalog"]]["networks"]
        assert project["networks"]["baseline"] == {"name": "stacklet-baseline-shop", "external": True}
        only_local = [p for p in orders_plan.proxies if not set(p.targets) & {"catalog", "fraud", "users"}]
        for proxy in only_local:
            assert "baseline" not in project["services"][proxy.name]["networks"]

    def test_published_ports_are_loopback_and_chosen_by_docker(self, project, orders_plan):
        seen = {}
        for name, port in all_ports(project):
            assert port["host_ip"] == "127.0.0.1"
            assert port["published"] == ""
            seen.setdefault(name, []).append(port["target"])
        for svc in orders_plan.local:
            assert seen[svc.compose_name] == svc.ports

    def test_labels_everywhere(self, project, orders_plan):
        roles = {s.compose_name: (s.name, s.role) for s in orders_plan.local}
        for name, spec in project["services"].items():
            labels = spec["labels"]
            for key in LABEL_KEYS:
                assert key in labels, (name, key)
            assert labels["dev.stacklet.slice"] == "shop-orders"
            assert labels["dev.stacklet.stack"] == "shop"
            assert labels["dev.stacklet.ttl"] == "3600"
            if name in roles:
                assert (labels["dev.stacklet.service"], labels["dev.stacklet.role"]) == roles[name]
        for name, network in project["networks"].items():
            if not network.get("external"):
                assert network["labels"]["dev.stacklet.slice"] == "shop-orders", name
                assert network["labels"]["dev.stacklet.ttl"] == "3600"
        assert project["networks"]["default"]["name"] == "stacklet-shop-orders"
        assert set(project["volumes"]) == {"orders-db-data", "inventory-db-data", "redis-data"}
        for name, volume in project["volumes"].items():
            assert volume["labels"]["dev.stacklet.slice"] == "shop-orders", name
            assert "name" not in volume and "external" not in volume

    def test_no_container_names_and_no_host_names(self, project):
        for spec in project["services"].values():
            assert "container_name" not in spec
            assert "hostname" not in spec
            assert "links" not in spec
            assert "profiles" not in spec

    def test_depends_on_is_rewritten(self, project, orders_plan):
        proxy_of = {t: p.name for p in orders_plan.proxies for t in p.targets}
        orders = project["services"]["orders.origin"]["depends_on"]
        assert orders["orders-db.origin"]["condition"] == "service_healthy"
        assert orders["redis.origin"]["condition"] == "service_healthy"
        assert proxy_of["orders-db"] in orders and proxy_of["payments"] in orders
        assert "orders-db" not in orders and "redis" not in orders
        gateway = project["services"]["gateway"]["depends_on"]
        assert set(gateway) == {proxy_of["orders"], proxy_of["catalog"]}
        for name, spec in project["services"].items():
            for dep in spec.get("depends_on", {}):
                assert dep in project["services"], (name, dep)
        assert "depends_on" not in project["services"]["orders-db.origin"]

    def test_build_contexts_are_absolute_and_images_named_by_their_sources(self, project, orders_plan, shop):
        spec = project["services"]["orders.origin"]
        assert spec["build"]["context"].startswith("/")
        assert spec["image"].startswith("stacklet-build/shop-orders:")
        again = render(orders_plan, shop, "other-slice")["services"]["orders.origin"]
        assert again["image"] == spec["image"]  # the same sources name the same image in every slice

    def test_environment_is_untouched(self, project, shop):
        assert project["services"]["orders.origin"]["environment"] == shop.compose.services["orders"].environment

    def test_render_does_not_change_the_stack(self, orders_plan, shop):
        before = json.dumps(shop.compose.raw, sort_keys=True, default=str)
        render(orders_plan, shop, "a")
        render_baseline(shop)
        assert json.dumps(shop.compose.raw, sort_keys=True, default=str) == before


class TestRenderDetails:
    def test_named_volumes_lose_name_and_external(self, make_stack):
        stack = make_stack({"db": service("postgres:16", volumes=[named_volume("pgdata", "/var/lib/postgresql/data"),
                                                                  {"type": "bind", "source": "/etc/x",
                                                                   "target": "/etc/x"}]),
                            "unused": service("x/u", volumes=[named_volume("other", "/o")])},
                           volumes={"pgdata": {"name": "prod_pgdata", "external": True},
                                    "other": {"driver": "local"}})
        plan = make_plan(stack, ["db"])
        project = render(plan, stack, "s1")
        assert project["volumes"] == {"pgdata": {"labels": {"dev.stacklet.slice": "s1", "dev.stacklet.stack": "demo"}}}
        assert project["services"]["db"]["volumes"][1]["type"] == "bind"

    def test_volume_options_are_kept(self, make_stack):
        stack = make_stack({"db": service("postgres:16", volumes=[named_volume("pgdata", "/var/lib/x")])},
                           volumes={"pgdata": {"name": "demo_pgdata", "driver": "local",
                                               "driver_opts": {"type": "tmpfs"}}})
        volume = render(make_plan(stack, ["db"]), stack, "s1")["volumes"]["pgdata"]
        assert volume["driver"] == "local" and volume["driver_opts"] == {"type": "tmpfs"}
        assert "name" not in volume

    def test_local_service_spec_is_cleaned(self, make_stack):
        stack = make_stack({
            "web": service("x/web", container_name="prod-web", hostname="web1", profiles=["p"],
                           links=["api"], ports=[{"target": 80, "published": "8080", "protocol": "tcp"}],
                           networks={"front": {"aliases": ["www"]}, "back": None},
                           labels={"team": "web"}, environment={"API": "http://api:9000"}),
            "api": service("x/api"),
        }, profiles=["p"])
        project = render(make_plan(stack, ["web"], radius=0), stack, "s1")
        web = project["services"]["web"]
        assert "container_name" not in web and "hostname" not in web and "profiles" not in web
        assert "links" not in web
        assert web["networks"] == {"default": {"aliases": ["www"]}}
        assert web["ports"] == [{"target": 80, "host_ip": "127.0.0.1", "published": "", "protocol": "tcp",
                                 "mode": "ingress"}]
        assert web["labels"]["team"] == "web" and web["labels"]["dev.stacklet.role"] == "changed"
        assert list(project["networks"]) == ["default", "baseline"]

    def test_list_labels_are_kept(self, make_stack):
        stack = make_stack({"web": service("x/web", labels=["team=web", "flag"])})
        labels = render(make_plan(stack, ["web"]), stack, "s1")["services"]["web"]["labels"]
        assert labels["team"] == "web" and labels["flag"] == ""
        assert labels["dev.stacklet.service"] == "web"

    def test_udp_ports_stay_udp(self, make_stack):
        stack = make_stack({"statsd": service("x/statsd", ports=[
            {"target": 8125, "published": "8125", "protocol": "udp", "mode": "ingress"}])})
        project = render(make_plan(stack, ["statsd"]), stack, "s1")
        (port,) = project["services"]["statsd"]["ports"]
        assert port["target"] == 8125 and port["host_ip"] == "127.0.0.1" and port["published"] == ""
        assert port["protocol"] == "udp"

    def test_remote_only_slice_does_not_join_the_baseline_network(self, make_stack):
        stack = make_stack({"web": service("x/web", environment={"API": "http://api:8000"}), "api": service("x/api")},
                           meta={"baseline": {"addresses": {"api": "api.staging:443"}}})
        project = render(make_plan(stack, ["web"], radius=0), stack, "s1")
        assert "baseline" not in project["networks"]
        assert project["services"]["stacklet-link-1"]["networks"] == {"default": {"aliases": ["api"]}}

    def test_depends_on_a_forwarded_service_becomes_its_proxy(self, make_stack):
        stack = make_stack({"web": service("x/web", depends_on={"api": {"condition": "service_healthy"}},
                                           environment={"API": "http://api:8000"}),
                            "api": service("x/api")})
        project = render(make_plan(stack, ["web"], radius=0), stack, "s1")
        assert project["services"]["web"]["depends_on"] == {"stacklet-link-1": {"condition": "service_started",
                                                                                 "required": True}}

    def test_secrets_and_configs_are_copied(self, make_stack):
        stack = make_stack({"web": service("x/web")}, secrets={"token": {"file": "/abs/token.txt"}},
                           configs={"conf": {"file": "/abs/app.conf"}})
        project = render(make_plan(stack, ["web"]), stack, "s1")
        assert project["secrets"] == {"token": {"file": "/abs/token.txt"}}
        assert project["configs"] == {"conf": {"file": "/abs/app.conf"}}


# --------------------------------------------------------------------------------------------
# render_baseline()


class TestRenderBaseline:
    def test_shop(self, shop):
        project = render_baseline(shop, labels={"dev.stacklet.owner": "ci"})
        assert project["name"] == "stacklet-baseline-shop"
        assert set(project["services"]) == set(shop.services)
        for name, spec in project["services"].items():
            assert spec["networks"]["stacklet_baseline"] == {"aliases": [f"{name}.baseline"]}
            assert "default" in spec["networks"]
            labels = spec["labels"]
            assert labels["dev.stacklet.baseline"] == "shop" and labels["dev.stacklet.stack"] == "shop"
            assert labels["dev.stacklet.service"] == name and labels["dev.stacklet.role"] == "baseline"
            assert labels["dev.stacklet.owner"] == "ci"
            assert "container_name" not in spec
            for port in spec["ports"]:
                assert port["host_ip"] == "127.0.0.1" and port["published"] == ""
        assert [p["target"] for p in project["services"]["orders-db"]["ports"]] == [5432]
        assert project["networks"]["stacklet_baseline"]["name"] == "stacklet-baseline-shop"
        for name, network in project["networks"].items():
            assert network["labels"]["dev.stacklet.baseline"] == "shop", name
        assert set(project["volumes"]) == {"orders-db-data", "inventory-db-data", "catalog-db-data", "redis-data"}
        for volume in project["volumes"].values():
            assert volume["labels"]["dev.stacklet.baseline"] == "shop"
            assert "name" not in volume

    def test_the_slice_network_name_matches(self, shop, orders_plan):
        slice_project = render(orders_plan, shop, "s1")
        assert slice_project["networks"]["baseline"]["name"] == render_baseline(shop)["networks"][
            "stacklet_baseline"]["name"]

    def test_details(self, make_stack):
        stack = make_stack({
            "vpn": service("x/vpn", container_name="vpn", ports=[{"target": 1194, "protocol": "tcp"}]),
            "app": service("x/app", network_mode="service:vpn", expose=[8000]),
            "host": service("x/host", network_mode="host", expose=[9000]),
            "web": service("x/web", profiles=["debug"], networks={"front": None},
                           volumes=[named_volume("ext", "/e")]),
        }, networks={"default": {"name": "demo_default"}, "front": {"name": "custom_front"},
                     "shared": {"name": "shared", "external": True}},
            volumes={"ext": {"name": "ext", "external": True}}, profiles=["debug"])
        project = render_baseline(stack)
        services = project["services"]
        assert "container_name" not in services["vpn"] and "profiles" not in services["web"]
        assert services["web"]["networks"] == {"front": None, "stacklet_baseline": {"aliases": ["web.baseline"]}}
        assert "networks" not in services["app"] or "stacklet_baseline" not in services["app"]["networks"]
        assert project["networks"]["front"].get("name") is None and "labels" in project["networks"]["front"]
        assert project["networks"]["shared"] == {"name": "shared", "external": True}
        assert project["volumes"]["ext"] == {"name": "ext", "external": True}
        # a container sharing another's network namespace cannot publish ports (Docker refuses)
        assert not services["app"].get("ports")
        assert not services["host"].get("ports")


# --------------------------------------------------------------------------------------------
# Compose itself accepts what render() writes


@pytest.mark.parametrize("changed", [["orders"], ["redis"], ["gateway", "catalog"], ["fraud"]])
def test_rendered_slice_is_valid_compose(shop, tmp_path, changed):
    project = render(make_plan(shop, changed), shop, "valid")
    assert compose_accepts(project, tmp_path) is None


def test_rendered_baseline_is_valid_compose(shop, tmp_path):
    assert compose_accepts(render_baseline(shop), tmp_path) is None


def test_a_service_without_healthcheck_is_probed_by_its_protocol_or_as_stack_yaml_says(compose_cli, tmp_path):
    from stacklet.config.stack import load_stack
    from stacklet.labels import Label

    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  api: {image: busybox, expose: ['8000'], depends_on: [db, cache, migrate]}\n"
        "  db: {image: postgres:16}\n"
        "  cache: {image: example/kv, expose: ['7000']}\n"
        "  migrate: {image: busybox, command: ['true'], restart: 'no', depends_on: [db]}\n")
    (tmp_path / "stack.yaml").write_text("services:\n  cache: {readiness: {protocol: redis, port: 7000}}\n")
    stack = load_stack(tmp_path)
    spec = render(make_plan(stack, ["api"]), stack, "t")
    labels = {key: spec["services"][key]["labels"] for key in spec["services"]}
    origin = {name.removesuffix(".origin"): value for name, value in labels.items()}
    assert origin["db"][Label.READINESS] == "postgres:5432"
    assert origin["cache"][Label.READINESS] == "redis:7000"
    assert origin["api"][Label.READINESS] == "tcp:8000"
    assert Label.READINESS not in origin["migrate"] and origin["migrate"][Label.ONE_SHOT] == "true"
