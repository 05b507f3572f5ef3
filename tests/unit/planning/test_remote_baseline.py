"""A baseline on another engine: render_baseline(advertise=...), its labels, and plans forwarding to it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stacklet.config.stack import BaselineConfig
from stacklet.labels import AdvertisedBaseline, Label, advertised_ports, encode_advertised
from stacklet.planning.plan import is_remote_upstream, make_plan
from stacklet.planning.render import TOKEN_ENV, advertise_layout, render, render_baseline

from .test_plan import all_ports, with_meta

TEAM_BOX = "10.250.0.2"


def advertised_baseline(project, engine="tcp://10.250.0.2:2375") -> AdvertisedBaseline:
    """What an engine running ``project`` would report, read from the rendered labels as the engine keeps them."""
    services = {name: advertised_ports(spec["labels"]) for name, spec in project["services"].items()}
    first = next(iter(project["services"].values()))["labels"]
    return AdvertisedBaseline(engine=engine, stack="shop", started=first.get(Label.STARTED),
                              advertise=first.get(Label.ADVERTISE), services={k: v for k, v in services.items() if v})


class TestAdvertisedRender:
    def test_nothing_beyond_loopback_unless_asked(self, shop):
        project = render_baseline(shop)
        assert {port["host_ip"] for _, port in all_ports(project)} == {"127.0.0.1"}
        assert not any(Label.ADVERTISED in spec["labels"] or Label.ADVERTISE in spec["labels"]
                       for spec in project["services"].values())

    def test_every_tcp_port_is_published_on_the_address_and_recorded(self, shop):
        project = render_baseline(shop, {Label.STARTED: "2026-01-02T03:04:05Z"}, advertise=TEAM_BOX)
        for name, spec in project["services"].items():
            published = {p["target"]: f"{p['host_ip']}:{p['published']}" for p in spec["ports"]
                         if p["host_ip"] == TEAM_BOX}
            assert published and advertised_ports(spec["labels"]) == published, name
            assert spec["labels"][Label.ADVERTISE] == TEAM_BOX
            assert spec["labels"][Label.STARTED] == "2026-01-02T03:04:05Z"
            assert any(p["host_ip"] == "127.0.0.1" for p in spec["ports"]), "loopback stays for the engine's host"

    def test_host_ports_are_distinct_and_keep_the_service_port_when_free(self, shop):
        layout = advertise_layout(shop, TEAM_BOX)
        addresses = [a for ports in layout.values() for a in ports.values()]
        assert len(addresses) == len(set(addresses))
        assert layout["catalog"] == {8084: f"{TEAM_BOX}:8084"}
        assert sorted(layout[db][5432] for db in ("catalog-db", "inventory-db", "orders-db")) == [
            f"{TEAM_BOX}:5432", f"{TEAM_BOX}:5433", f"{TEAM_BOX}:5434"]

    def test_ports_the_engine_publishes_for_others_are_skipped(self, shop):
        """Two stacks' baselines on one team box: the second one's ports go around the first one's."""
        layout = advertise_layout(shop, TEAM_BOX, in_use={8084, 5432, 5433})
        used = {int(a.rsplit(":", 1)[1]) for ports in layout.values() for a in ports.values()}
        assert not used & {8084, 5432, 5433} and len(used) == sum(len(p) for p in layout.values())

    def test_labels_round_trip(self):
        assert advertised_ports({Label.ADVERTISED: encode_advertised({80: "h:1", 443: "h:2"})}) == {80: "h:1", 443: "h:2"}
        assert advertised_ports({Label.ADVERTISED: "not json"}) == {} and advertised_ports({}) == {}


class TestPlanForwardsToTheAdvertisedBaseline:
    def test_forwarded_services_name_their_baseline(self, shop):
        baseline = advertised_baseline(render_baseline(shop, {Label.STARTED: "2026-01-02T03:04:05Z"}, TEAM_BOX))
        plan = make_plan(shop, ["orders"], baseline=baseline)
        forwarded = {f.name: f for f in plan.forwarded}
        assert set(forwarded) == {"catalog", "fraud", "users"}
        for service in forwarded.values():
            assert service.baseline == "remote" and service.engine == "tcp://10.250.0.2:2375"
            assert service.started == "2026-01-02T03:04:05Z" and service.address.startswith(f"{TEAM_BOX}:")
        assert not plan.uses_local_baseline

    def test_the_link_proxy_routes_go_to_the_advertised_ports(self, shop):
        baseline = advertised_baseline(render_baseline(shop, advertise=TEAM_BOX))
        baseline.services["catalog"] = {8084: f"{TEAM_BOX}:9999"}  # a remapped port is followed too
        plan = make_plan(shop, ["orders"], baseline=baseline)
        upstreams = {r.target: r.upstream for p in plan.proxies for r in p.routes}
        assert upstreams["catalog"] == f"{TEAM_BOX}:9999" and upstreams["users"] == f"{TEAM_BOX}:8085"
        assert "baseline" not in render(plan, shop, "rm-unit")["networks"]

    def test_hand_written_addresses_win(self, shop):
        baseline = advertised_baseline(render_baseline(shop, advertise=TEAM_BOX))
        stack = with_meta(shop, baseline=BaselineConfig(addresses={"users": "staging:8085"}))
        forwarded = {f.name: f for f in make_plan(stack, ["orders"], baseline=baseline).forwarded}
        assert forwarded["users"].address == "staging:8085" and forwarded["users"].engine is None
        assert forwarded["catalog"].engine == "tcp://10.250.0.2:2375"

    def test_a_service_the_baseline_does_not_advertise_is_noted(self, shop):
        baseline = AdvertisedBaseline(engine="tcp://10.250.0.2:2375", stack="shop",
                                      services={"catalog": {8084: f"{TEAM_BOX}:8084"}})
        plan = make_plan(shop, ["orders"], baseline=baseline)
        assert any("users is forwarded but the baseline on tcp://10.250.0.2:2375 does not advertise it" in n
                   for n in plan.notes)


class TestBaselineEngineConfig:
    @pytest.mark.parametrize("engine", ["tcp://10.250.0.2:2375", "ssh://me@box", "unix:///run/teambox.sock",
                                        "team-box"])
    def test_accepted(self, engine):
        assert BaselineConfig(engine=engine).engine == engine

    @pytest.mark.parametrize("engine", ["http://box", "tcp://", "two words", "-H"])
    def test_refused_with_the_forms(self, engine):
        with pytest.raises(ValidationError, match="engine must be"):
            BaselineConfig(engine=engine)


class TestLinkProxyToken:
    def test_the_slice_token_reaches_every_link_proxy_and_only_them(self, shop):
        project = render(make_plan(shop, ["orders"]), shop, "rm-unit", labels={Label.TOKEN: "t0k"})
        for name, spec in project["services"].items():
            if spec["labels"][Label.ROLE] == "linkproxy":
                assert spec["environment"] == {TOKEN_ENV: "t0k"}, name
            else:
                assert TOKEN_ENV not in (spec.get("environment") or {}), name

    def test_no_token_no_environment(self, shop):
        project = render(make_plan(shop, ["orders"]), shop, "rm-unit")
        assert not any("environment" in spec for name, spec in project["services"].items()
                       if spec["labels"][Label.ROLE] == "linkproxy")


class TestSliceOnAnotherEngine:
    def test_a_slice_publishes_on_the_engines_advertise_address_only_when_given(self, shop):
        plan = make_plan(shop, ["orders"])
        assert {p["host_ip"] for _, p in all_ports(render(plan, shop, "rm-unit"))} == {"127.0.0.1"}
        remote = render(plan, shop, "rm-unit", publish_ip=TEAM_BOX)
        assert {p["host_ip"] for _, p in all_ports(remote)} == {TEAM_BOX}

    def test_the_slice_names_the_engine_of_the_baseline_it_forwards_to(self, shop):
        baseline = advertised_baseline(render_baseline(shop, advertise=TEAM_BOX))
        project = render(make_plan(shop, ["orders"], baseline=baseline), shop, "rm-unit")
        assert {spec["labels"][Label.BASELINE_ENGINE] for spec in project["services"].values()} == {
            "tcp://10.250.0.2:2375"}
        assert not any(Label.BASELINE_ENGINE in spec["labels"]
                       for spec in render(make_plan(shop, ["orders"]), shop, "rm-unit")["services"].values())

    def test_remote_upstreams(self):
        assert is_remote_upstream("10.250.0.2:8084") and is_remote_upstream("catalog.staging.example:443")
        assert not is_remote_upstream("users.baseline:8085") and not is_remote_upstream("orders-db.origin:5432")
