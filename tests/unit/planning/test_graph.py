"""graph.py: edges, slice selection, explanations, exports and start layers."""

from __future__ import annotations

import re

import pytest

from stacklet.errors import PlanError
from stacklet.planning.graph import ServiceGraph, dependency_layers, references
from stacklet.planning.plan import select_slice

from ..conftest import service

SHOP_NAMES = {"gateway", "orders", "payments", "inventory", "catalog", "users", "fraud", "notifications",
              "orders-db", "inventory-db", "catalog-db", "redis"}
ORDERS_LOCAL = {"orders": "changed", "gateway": "caller", "payments": "callee", "inventory": "callee",
                "orders-db": "callee", "redis": "callee", "inventory-db": "stateful"}


def graph_of(make_stack, services, **kw) -> ServiceGraph:
    return ServiceGraph.from_stack(make_stack(services, **kw))


def edges(graph: ServiceGraph) -> set[tuple[str, str]]:
    return set(graph.graph.edges)


# --------------------------------------------------------------------------------------------
# edges


class TestEdges:
    def test_depends_on_list_and_map(self, make_stack):
        graph = graph_of(make_stack, {
            "a": service("x/a", depends_on=["b"]),
            "b": service("x/b", depends_on={"c": {"condition": "service_healthy", "required": True}}),
            "c": service("x/c"),
        })
        assert edges(graph) == {("a", "b"), ("b", "c")}
        assert graph.edge_reasons("a", "b") == ["depends_on"]
        assert graph.callees("a") == ["b"] and graph.callers("c") == ["b"]

    def test_links(self, make_stack):
        graph = graph_of(make_stack, {"web": service("x/web", links=["db:database"]), "db": service("x/db")})
        assert edges(graph) == {("web", "db")}
        assert graph.edge_reasons("web", "db") == ["links"]

    def test_calls_in_stack_yaml(self, make_stack):
        graph = graph_of(make_stack, {"a": service("x/a"), "b": service("x/b")},
                         meta={"services": {"a": {"calls": ["b"]}}})
        assert edges(graph) == {("a", "b")}
        assert graph.edge_reasons("a", "b") == ["calls in stack.yaml"]

    def test_env_host_port_and_slashes(self, make_stack):
        graph = graph_of(make_stack, {
            "web": service("x/web", environment={
                "API_URL": "http://api:8000/v1",
                "DATABASE_URL": "postgresql://user:secret@db:5432/app",
                "SEARCH": "https://search/",
                "BROKERS": "kafka-1:9092,kafka-2:9093",
                "CACHE": "redis://:pw@cache",
            }),
            "api": service("x/api"), "db": service("postgres:16"), "search": service("x/search"),
            "kafka-1": service("x/kafka"), "kafka-2": service("x/kafka"), "cache": service("x/cache"),
        })
        assert graph.callees("web") == ["api", "cache", "db", "kafka-1", "kafka-2", "search"]
        assert graph.edge_reasons("web", "api") == ["env API_URL"]
        assert graph.edge_reasons("web", "search") == ["env SEARCH"]
        assert graph.ports_seen("api") == {8000}
        assert graph.ports_seen("db") == {5432}
        assert graph.ports_seen("kafka-2") == {9093}
        assert graph.ports_seen("search") == set()

    def test_bare_host_in_a_host_key(self, make_stack):
        graph = graph_of(make_stack, {
            "app": service("x/app", environment={"DB_HOST": "db", "MODE": "cache", "REDIS_ADDR": "cache"}),
            "db": service("x/db"), "cache": service("x/cache"),
        })
        assert edges(graph) == {("app", "db"), ("app", "cache")}
        assert graph.edge_reasons("app", "cache") == ["env REDIS_ADDR"]  # not MODE

    def test_no_edges_from_substrings_of_other_names(self, make_stack):
        graph = graph_of(make_stack, {
            "app": service("x/app", environment={
                "ORDERS_DB": "postgresql://u:p@orders-db:5432/o",
                "API": "http://api.example.com:8000",
                "OTHER_API": "http://my-api:8000",
                "DOCS": "https://api-docs/",
                "MODE": "api",
                "TEXT": "the api and the db are great",
                "PATH_LIKE": "/srv/db:/data",
                "DB_HOSTNAME": "mydb",
            }),
            "api": service("x/api"), "db": service("x/db"), "orders-db": service("postgres:16"),
            "my-api": service("x/my-api"), "api-docs": service("x/docs"),
        })
        assert graph.callees("app") == ["api-docs", "my-api", "orders-db"]

    def test_edges_are_merged_with_all_reasons_and_ports(self, make_stack):
        graph = graph_of(make_stack, {
            "a": service("x/a", depends_on=["b"], environment={"B": "http://b:80", "B2": "b:81", "B3": "http://b:80/x"}),
            "b": service("x/b"),
        }, meta={"services": {"a": {"calls": ["b"]}}})
        assert edges(graph) == {("a", "b")}
        assert graph.edge_reasons("a", "b") == ["depends_on", "calls in stack.yaml", "env B", "env B2", "env B3"]
        assert graph.ports_seen("b") == {80, 81}

    def test_no_self_edges_and_no_edges_to_unknown_services(self, make_stack):
        graph = graph_of(make_stack, {
            "a": service("x/a", depends_on=["ghost"], environment={"SELF": "http://a:80", "X": "http://ghost:1"}),
        })
        assert edges(graph) == set()
        assert set(graph.graph) == {"a"}

    def test_uninterpolated_values_use_their_defaults(self, make_stack, monkeypatch):
        monkeypatch.delenv("API_HOST", raising=False)
        monkeypatch.delenv("API_PORT", raising=False)
        graph = graph_of(make_stack, {
            "web": service("x/web", environment={"API_URL": "http://${API_HOST:-api}:${API_PORT:-8000}"}),
            "api": service("x/api"),
        }, interpolated=False)
        assert edges(graph) == {("web", "api")}
        assert graph.ports_seen("api") == {8000}

    @pytest.mark.parametrize(("key", "value", "expected"), [
        ("URL", "http://api:8000", [("api", 8000)]),
        ("URL", "http://api", [("api", None)]),
        ("URL", "http://api/x?y=1", [("api", None)]),
        ("URL", "http://user:pw@api:8000", [("api", 8000)]),
        ("HOSTS", "db:5432,api:8000", [("db", 5432), ("api", 8000)]),
        ("DB_HOST", "db", [("db", None)]),
        ("DB_NAME", "db", []),
        ("URL", "http://xapi:8000", []),
        ("URL", "http://api.local:8000", []),
        ("URL", "", []),
    ])
    def test_references(self, key, value, expected):
        assert references(key, value, {"api", "db"}) == expected

    def test_shop_edges(self, shop):
        graph = ServiceGraph.from_stack(shop)
        assert set(graph.graph) == SHOP_NAMES
        assert edges(graph) == {
            ("gateway", "orders"), ("gateway", "catalog"), ("gateway", "users"),
            ("orders", "orders-db"), ("orders", "payments"), ("orders", "inventory"), ("orders", "redis"),
            ("payments", "fraud"), ("payments", "redis"), ("inventory", "inventory-db"),
            ("catalog", "catalog-db"), ("users", "redis"), ("notifications", "redis"),
        }
        assert "env DATABASE_URL" in graph.edge_reasons("orders", "orders-db")
        assert "depends_on" in graph.edge_reasons("orders", "orders-db")
        assert graph.ports_seen("orders-db") == {5432}
        assert graph.ports_seen("orders") == {8081}


# --------------------------------------------------------------------------------------------
# the shop slice for orders


class TestShopSlice:
    @pytest.fixture
    def graph(self, shop):
        return ServiceGraph.from_stack(shop)

    def test_orders_slice(self, shop, graph):
        sel = select_slice(shop, ["orders"], None, graph)
        assert sel.radius == 1
        assert sel.changed == ["orders"]
        assert sel.local == ORDERS_LOCAL
        assert sel.forwarded == ["catalog", "fraud", "users"]
        assert "notifications" not in sel.local and "notifications" not in sel.forwarded
        assert "catalog-db" not in sel.local and "catalog-db" not in sel.forwarded

    def test_orders_links(self, shop, graph):
        sel = select_slice(shop, ["orders"], None, graph)
        assert set(sel.links) == {
            ("gateway", "orders"), ("gateway", "catalog"), ("gateway", "users"),
            ("orders", "orders-db"), ("orders", "payments"), ("orders", "inventory"), ("orders", "redis"),
            ("payments", "fraud"), ("payments", "redis"), ("inventory", "inventory-db"),
        }
        for source, _ in sel.links:
            assert source in sel.local

    def test_orders_reasons(self, shop, graph):
        sel = select_slice(shop, ["orders"], None, graph)
        assert sel.reasons["orders"] == ["changed"]
        assert sel.reasons["gateway"] == ["caller at distance 1: calls orders"]
        assert sel.reasons["payments"] == ["callee at distance 1: called by orders"]
        assert sel.reasons["inventory-db"] == ["stateful dependency of inventory (a slice never uses baseline data)"]
        assert sel.reasons["fraud"] == ["dependency of local payments"]
        assert sel.reasons["catalog"] == ["dependency of local gateway",
                                          "forwarded catalog may write to the baseline's catalog-db"]
        assert sel.writes == {"catalog": ["catalog-db"], "users": ["redis"]}

    def test_radius_0(self, shop, graph):
        sel = select_slice(shop, ["orders"], 0, graph)
        assert sel.local == {"orders": "changed", "orders-db": "stateful", "redis": "stateful"}
        assert sel.forwarded == ["inventory", "payments"]
        assert "gateway" not in sel.forwarded  # callers are never forwarded: nobody calls them

    def test_radius_2(self, shop, graph):
        sel = select_slice(shop, ["orders"], 2, graph)
        assert sel.local == {"orders": "changed", "gateway": "caller", "payments": "callee",
                             "inventory": "callee", "orders-db": "callee", "redis": "callee",
                             "fraud": "callee", "inventory-db": "callee"}
        assert sel.forwarded == ["catalog", "users"]
        assert "callee at distance 2: called by orders" in sel.reasons["fraud"]

    def test_radius_from_stack_yaml_and_negative_radius(self, shop, graph):
        assert select_slice(shop, ["orders"], None, graph).radius == shop.meta.radius == 1
        with pytest.raises(PlanError) as info:
            select_slice(shop, ["orders"], -1, graph)
        assert "-1" in info.value.message and "--radius" in info.value.hint

    def test_several_changed_services(self, shop, graph):
        sel = select_slice(shop, ["orders", "catalog"], None, graph)
        assert sel.changed == ["orders", "catalog"]
        assert sel.local == {**ORDERS_LOCAL, "catalog": "changed", "catalog-db": "callee"}
        assert sel.forwarded == ["fraud", "users"]
        assert sel.reasons["gateway"] == ["caller at distance 1: calls orders", "caller at distance 1: calls catalog"]

    def test_changed_services_that_call_each_other(self, shop, graph):
        sel = select_slice(shop, ["orders", "payments", "orders"], None, graph)
        assert sel.changed == ["orders", "payments"]  # duplicates dropped, order kept
        assert sel.local["payments"] == "changed"
        assert sel.local["fraud"] == "callee"
        assert sel.forwarded == ["catalog", "users"]

    def test_changed_stateful_service(self, shop, graph):
        sel = select_slice(shop, ["redis"], None, graph)
        assert sel.local == {"redis": "changed", "orders": "caller", "payments": "caller", "users": "caller",
                             "notifications": "caller", "orders-db": "stateful"}
        assert sel.forwarded == ["fraud", "inventory"]

    def test_unknown_service(self, shop, graph):
        with pytest.raises(PlanError) as info:
            select_slice(shop, ["orders", "shipping"], None, graph)
        assert "shipping" in info.value.message
        assert "orders" in info.value.hint and "gateway" in info.value.hint
        assert info.value.exit_code == 3

    def test_no_changed_service(self, shop, graph):
        with pytest.raises(PlanError) as info:
            select_slice(shop, [], None, graph)
        assert "--since" in info.value.hint

    def test_stateful_dependencies_are_transitive(self, make_stack):
        stack = make_stack({
            "api": service("x/api", depends_on=["db"]),
            "db": service("postgres:16", depends_on=["primary"]),
            "primary": service("postgres:16"),
            "other": service("x/other"),
        })
        sel = select_slice(stack, ["api"], 0, ServiceGraph.from_stack(stack))
        assert sel.local == {"api": "changed", "db": "stateful", "primary": "stateful"}
        assert sel.forwarded == []


# --------------------------------------------------------------------------------------------
# explain()


class TestExplain:
    @pytest.fixture
    def setup(self, shop):
        graph = ServiceGraph.from_stack(shop)
        return graph, select_slice(shop, ["orders"], None, graph)

    def test_changed(self, setup):
        graph, sel = setup
        assert graph.explain("orders", sel) == "orders is local (changed): changed"

    def test_local(self, setup):
        graph, sel = setup
        assert graph.explain("gateway", sel) == "gateway is local (caller): caller at distance 1: calls orders"
        assert graph.explain("inventory-db", sel) == ("inventory-db is local (stateful): stateful dependency of "
                                                      "inventory (a slice never uses baseline data)")

    def test_forwarded(self, setup):
        graph, sel = setup
        assert graph.explain("catalog", sel) == ("catalog is forwarded to the baseline: dependency of local gateway; "
                                                     "forwarded catalog may write to the baseline's catalog-db")
        assert graph.explain("fraud", sel) == "fraud is forwarded to the baseline: dependency of local payments"

    def test_absent(self, setup):
        graph, sel = setup
        assert graph.explain("notifications", sel) == (
            "notifications is not in the slice: no local service calls it "
            "(it is 2 hops from the changed services, radius 1)")
        assert "3 hops" in graph.explain("catalog-db", sel)

    def test_absent_and_not_connected(self, make_stack):
        stack = make_stack({"a": service("x/a", depends_on=["b"]), "b": service("x/b"), "lonely": service("x/l")})
        graph = ServiceGraph.from_stack(stack)
        sel = select_slice(stack, ["a"], None, graph)
        text = graph.explain("lonely", sel)
        assert text.startswith("lonely is not in the slice")
        assert "not connected" in text

    def test_unknown(self, setup):
        graph, sel = setup
        with pytest.raises(PlanError) as info:
            graph.explain("shipping", sel)
        assert "shipping" in info.value.message
        assert "orders" in info.value.hint


# --------------------------------------------------------------------------------------------
# exports


class TestExports:
    @pytest.fixture
    def setup(self, shop):
        graph = ServiceGraph.from_stack(shop)
        return graph, select_slice(shop, ["orders"], None, graph)

    def test_mermaid_has_every_node_and_edge(self, setup):
        graph, _ = setup
        text = graph.to_mermaid()
        assert text.startswith("flowchart LR\n")
        ids = dict(re.findall(r'^\s+(n\d+)\["([^"]+)"\]$', text, re.M))
        assert set(ids.values()) == SHOP_NAMES
        found = {(ids[a], ids[b]) for a, b in re.findall(r"^\s+(n\d+) --> (n\d+)$", text, re.M)}
        assert found == set(graph.graph.edges)
        assert "classDef" not in text

    def test_mermaid_marks_the_slice(self, setup):
        graph, sel = setup
        text = graph.to_mermaid(sel)
        ids = {name: node for node, name in re.findall(r'^\s+(n\d+)\["([^"]+)"\]$', text, re.M)}
        classes = dict((node, cls) for node, cls in re.findall(r"^\s+class (n\d+) (\w+)$", text, re.M))
        assert classes[ids["orders"]] == "changed"
        for name in ORDERS_LOCAL.keys() - {"orders"}:
            assert classes[ids[name]] == "local"
        for name in ("catalog", "fraud", "users"):
            assert classes[ids[name]] == "forwarded"
        assert ids["notifications"] not in classes

    def test_dot_has_every_node_and_edge(self, setup):
        graph, sel = setup
        for text in (graph.to_dot(), graph.to_dot(sel)):
            assert text.startswith("digraph services {") and text.rstrip().endswith("}")
            nodes = set(re.findall(r'^\s+"([^"]+)" \[label="\1"', text, re.M))
            assert nodes == SHOP_NAMES
            found = set(re.findall(r'^\s+"([^"]+)" -> "([^"]+)";$', text, re.M))
            assert found == set(graph.graph.edges)

    def test_dot_marks_the_slice(self, setup):
        graph, sel = setup
        lines = {re.match(r'\s+"([^"]+)" \[', ln).group(1): ln for ln in graph.to_dot(sel).splitlines()
                 if re.match(r'\s+"[^"]+" \[', ln)}
        assert "#ff9966" in lines["orders"]
        assert "#99ccff" in lines["gateway"] and "#99ccff" in lines["inventory-db"]
        assert "dashed" in lines["fraud"]
        assert "filled" not in lines["notifications"] and "dashed" not in lines["notifications"]


# --------------------------------------------------------------------------------------------
# start layers


class TestDependencyLayers:
    def test_layers_in_order(self):
        layers = dependency_layers({"web": ["api"], "api": ["db", "cache"], "db": [], "cache": [], "job": ["db"]})
        assert layers == [["cache", "db"], ["api", "job"], ["web"]]

    def test_every_service_once_and_after_its_dependencies(self, shop):
        depends = {name: list(svc.depends_on) for name, svc in shop.compose.services.items()}
        layers = dependency_layers(depends)
        position = {name: i for i, layer in enumerate(layers) for name in layer}
        assert sorted(position) == sorted(SHOP_NAMES)
        for name, deps in depends.items():
            for dep in deps:
                assert position[dep] < position[name]

    def test_empty(self):
        assert dependency_layers({}) == []

    def test_cycle(self):
        with pytest.raises(PlanError) as info:
            dependency_layers({"a": ["b"], "b": ["c"], "c": ["a"], "d": []})
        err = info.value
        assert "cycle" in err.message
        for name in ("a", "b", "c"):
            assert name in err.message
        assert "d" not in err.message.split(":", 1)[1]
        assert "depends_on" in err.hint
