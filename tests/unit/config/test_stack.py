"""stack.py: loading stack.yaml, its errors, finding stacks, stateful guesses and ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklet.errors import ComposeError, StackFileError
from stacklet.config.stack import (
    ServiceMeta,
    StackFile,
    check_references,
    find_stack_file,
    image_family,
    list_stacks,
    load_stack,
    load_stack_file,
)
from stacklet.planning.traits import service_ports, stateful_reason

from ..conftest import named_volume, service

COMPOSE = """\
services:
  orders:
    image: example/orders
    expose: ["8081"]
    environment:
      PAYMENTS_URL: http://payments:8082
  payments:
    image: example/payments
"""


def write_stack(folder: Path, stack_yaml: str | None, compose: str = COMPOSE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(compose)
    if stack_yaml is not None:
        (folder / "stack.yaml").write_text(stack_yaml)
    return folder / "stack.yaml"


def stack_file_error(tmp_path: Path, text: str) -> StackFileError:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError) as info:
        load_stack_file(path)
    return info.value


# --------------------------------------------------------------------------------------------
# stack.yaml schema errors (no Docker needed)


class TestStackFileErrors:
    def test_invalid_yaml_names_the_file_and_the_line(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nradius: 1\ndescription: a: b\n")
        assert err.file == str(tmp_path / "stack.yaml")
        assert str(tmp_path / "stack.yaml") in err.message
        assert "not valid YAML" in err.message
        assert "line 3" in err.message
        assert err.hint

    def test_invalid_yaml_line_of_a_bad_indent(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nservices:\n  orders:\n    calls: [a]\n   paths: [b]\n")
        assert "stack.yaml" in err.message
        assert "line 5" in err.message

    def test_unknown_service_key_names_the_key_path_and_the_allowed_keys(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nservices:\n  orders:\n    colour: red\n")
        assert err.key == "services.orders.colour"
        assert err.file == str(tmp_path / "stack.yaml")
        assert "services.orders.colour" in err.message and "stack.yaml" in err.message
        assert "unknown key" in err.message
        for allowed in ServiceMeta.model_fields:
            assert allowed in err.hint
        assert "radius" not in err.hint  # the keys of *that* level, not of the top level

    def test_unknown_top_level_key_lists_top_level_keys(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\ncolour: red\n")
        assert err.key == "colour"
        for allowed in StackFile.model_fields:
            assert allowed in err.hint

    @pytest.mark.parametrize(("text", "key", "allowed"), [
        ("name: shop\nbaseline:\n  colour: 1\n", "baseline.colour", ["addresses"]),
        ("name: shop\nlinkproxy:\n  img: x\n", "linkproxy.img", ["image"]),
    ])
    def test_unknown_nested_key(self, tmp_path, text, key, allowed):
        err = stack_file_error(tmp_path, text)
        assert err.key == key
        assert key in err.message
        for word in allowed:
            assert word in err.hint

    def test_name_is_optional(self, tmp_path):
        path = tmp_path / "stack.yaml"
        path.write_text("description: no name here\n")
        assert load_stack_file(path).name is None  # the stack is then named by its Compose project

    def test_negative_radius(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nradius: -1\n")
        assert err.key == "radius"
        assert "radius" in err.message and "0" in err.message
        assert "-1" in err.hint

    def test_bad_baseline_address(self, tmp_path):
        err = stack_file_error(tmp_path, 'name: shop\nbaseline:\n  addresses:\n    payments: "no port here"\n')
        assert err.key.startswith("baseline.addresses")
        assert "payments" in err.message
        assert "host:port" in err.message
        assert "no port here" in err.message

    @pytest.mark.parametrize("address", ["http://payments:8082", "payments:", "payments", ":8082",
                                         "payments:99999", "payments:0"])
    def test_bad_baseline_addresses(self, address):
        with pytest.raises(ValueError, match="host:port"):
            StackFile.model_validate({"name": "shop", "baseline": {"addresses": {"payments": address}}})

    @pytest.mark.parametrize("address", ["payments.staging:443", "10.0.0.7:8082", "[::1]:8082", "host_1:1"])
    def test_good_baseline_addresses(self, address):
        meta = StackFile.model_validate({"name": "shop", "baseline": {"addresses": {"payments": address}}})
        assert meta.baseline.addresses["payments"] == address

    def test_calls_must_be_a_list(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nservices:\n  orders:\n    calls: payments\n")
        assert err.key == "services.orders.calls"
        assert "list" in err.message
        assert "payments" in err.hint

    def test_stateful_must_be_a_boolean(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nservices:\n  orders:\n    stateful: maybe\n")
        assert err.key == "services.orders.stateful"

    def test_name_must_be_label_safe(self, tmp_path):
        err = stack_file_error(tmp_path, "name: Shop!\n")
        assert err.key == "name"
        assert "Shop!" in err.hint

    @pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
    def test_not_a_mapping(self, tmp_path, text):
        err = stack_file_error(tmp_path, text)
        assert "mapping" in err.message
        assert err.file == str(tmp_path / "stack.yaml")

    def test_unreadable_file(self, tmp_path):
        with pytest.raises(StackFileError) as info:
            load_stack_file(tmp_path / "absent" / "stack.yaml")
        assert "cannot read" in info.value.message
        assert "absent" in info.value.message

    def test_is_a_config_error_with_exit_code_3_and_json_form(self, tmp_path):
        err = stack_file_error(tmp_path, "name: shop\nradius: -1\n")
        assert err.exit_code == 3
        data = err.to_dict()
        assert data["error"] == "StackFileError"
        assert data["file"] == str(tmp_path / "stack.yaml") and data["key"] == "radius"
        assert set(data) >= {"message", "hint", "details"}

    def test_defaults(self, tmp_path):
        path = tmp_path / "stack.yaml"
        path.write_text("name: shop\n")
        meta = load_stack_file(path)
        assert meta.radius == 1
        assert meta.compose == []  # the file Compose would pick in the stack's folder
        assert meta.services == {} and meta.baseline.addresses == {}
        assert meta.linkproxy.image is None


# --------------------------------------------------------------------------------------------
# references from stack.yaml into the Compose project (in memory)


class TestReferences:
    SERVICES = {"orders": service("example/orders"), "payments": service("example/payments"),
                "inventory": service("example/inventory")}

    def test_service_not_in_compose_suggests_a_close_name(self, make_stack):
        stack = make_stack(self.SERVICES, meta={"services": {"ordrs": {}}})
        with pytest.raises(StackFileError) as info:
            check_references(stack)
        err = info.value
        assert err.key == "services.ordrs"
        assert "ordrs" in err.message and err.file == stack.source
        assert "did you mean 'orders'" in err.hint

    def test_service_without_a_close_name_lists_the_services(self, make_stack):
        stack = make_stack(self.SERVICES, meta={"services": {"zzzzzz": {}}})
        with pytest.raises(StackFileError) as info:
            check_references(stack)
        for name in self.SERVICES:
            assert name in info.value.hint

    def test_bad_calls_entry(self, make_stack):
        stack = make_stack(self.SERVICES, meta={"services": {"orders": {"calls": ["paymnts"]}}})
        with pytest.raises(StackFileError) as info:
            check_references(stack)
        assert info.value.key == "services.orders.calls"
        assert "paymnts" in info.value.message
        assert "did you mean 'payments'" in info.value.hint

    def test_baseline_address_of_unknown_service(self, make_stack):
        stack = make_stack(self.SERVICES, meta={"baseline": {"addresses": {"inventry": "h:1"}}})
        with pytest.raises(StackFileError) as info:
            check_references(stack)
        assert info.value.key == "baseline.addresses.inventry"
        assert "did you mean 'inventory'" in info.value.hint

    def test_valid_references_pass(self, make_stack):
        stack = make_stack(self.SERVICES, meta={"services": {"orders": {"calls": ["payments"]}},
                                                "baseline": {"addresses": {"inventory": "h:1"}}})
        check_references(stack)


# --------------------------------------------------------------------------------------------
# finding and loading stacks


class TestFindStack:
    def test_by_name_under_stacks(self, tmp_path, monkeypatch):
        path = write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        monkeypatch.chdir(tmp_path)
        assert find_stack_file("shop") == path.resolve()

    def test_by_name_from_a_subfolder(self, tmp_path, monkeypatch):
        path = write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        (tmp_path / "src" / "deep").mkdir(parents=True)
        monkeypatch.chdir(tmp_path / "src" / "deep")
        assert find_stack_file("shop") == path.resolve()

    def test_by_name_with_start(self, tmp_path):
        path = write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        assert find_stack_file("shop", start=tmp_path) == path.resolve()

    def test_by_folder(self, tmp_path):
        path = write_stack(tmp_path / "anywhere", "name: shop\n")
        assert find_stack_file(tmp_path / "anywhere") == path.resolve()
        assert find_stack_file(str(tmp_path / "anywhere")) == path.resolve()

    def test_by_stack_yaml_path(self, tmp_path):
        path = write_stack(tmp_path / "anywhere", "name: shop\n")
        assert find_stack_file(path) == path.resolve()

    def test_unknown_name_lists_the_stacks(self, tmp_path, monkeypatch):
        write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        write_stack(tmp_path / "stacks" / "blog", "name: blog\n")
        write_stack(tmp_path / "stacks" / "nometa", None)  # no stack.yaml: not a stack
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StackFileError) as info:
            find_stack_file("shoop")
        assert "shoop" in info.value.message
        assert "blog, shop" in info.value.hint
        assert "nometa" not in info.value.hint
        assert "-f compose.yaml" in info.value.hint

    def test_folder_without_stack_yaml_is_not_a_stack(self, tmp_path, monkeypatch):
        write_stack(tmp_path / "bare", None)
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StackFileError):
            find_stack_file(tmp_path / "bare")

    def test_list_stacks(self, tmp_path, monkeypatch):
        write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        write_stack(tmp_path / "stacks" / "blog", "name: blog\n")
        write_stack(tmp_path / "stacks" / "nometa", None)
        assert list_stacks(tmp_path) == ["blog", "shop"]
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path / "sub")
        assert list_stacks() == ["blog", "shop"]

    def test_list_stacks_without_a_stacks_folder(self, tmp_path):
        assert list_stacks(tmp_path) == []


@pytest.mark.usefixtures("compose_cli")
class TestLoadStack:
    STACK = "name: shop\nradius: 2\nservices:\n  orders:\n    calls: [payments]\n"

    @pytest.mark.parametrize("how", ["name", "folder", "file"])
    def test_three_ways_to_name_a_stack(self, tmp_path, monkeypatch, how):
        path = write_stack(tmp_path / "stacks" / "shop", self.STACK)
        monkeypatch.chdir(tmp_path)
        ref = {"name": "shop", "folder": path.parent, "file": path}[how]
        stack = load_stack(ref)
        assert stack.name == "shop"
        assert stack.meta.radius == 2
        assert stack.stack_file == path.resolve()
        assert stack.root == path.parent.resolve()
        assert stack.source == str(path.resolve())
        assert sorted(stack.services) == ["orders", "payments"]
        assert stack.service_meta("orders").calls == ["payments"]
        assert stack.service_meta("payments") == ServiceMeta()

    def test_the_only_stack_is_the_default(self, tmp_path, monkeypatch):
        write_stack(tmp_path / "stacks" / "shop", self.STACK)
        monkeypatch.chdir(tmp_path)
        assert load_stack().name == "shop"

    def test_no_stack_given_and_none_found(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StackFileError) as info:
            load_stack()
        assert "--stack" in info.value.hint and "-f compose.yaml" in info.value.hint

    def test_no_stack_given_and_several_found(self, tmp_path, monkeypatch):
        write_stack(tmp_path / "stacks" / "shop", "name: shop\n")
        write_stack(tmp_path / "stacks" / "blog", "name: blog\n")
        monkeypatch.chdir(tmp_path)
        with pytest.raises(StackFileError) as info:
            load_stack()
        assert "blog, shop" in info.value.hint

    def test_compose_file_without_stack_yaml_uses_defaults(self, tmp_path):
        write_stack(tmp_path / "My Project", None)
        stack = load_stack(compose_files=[tmp_path / "My Project" / "compose.yaml"])
        assert stack.stack_file is None
        assert stack.meta.radius == 1
        assert stack.meta.services == {} and stack.meta.baseline.addresses == {}
        assert stack.name == "myproject"  # Compose's project name, label-safe
        assert stack.source == str((tmp_path / "My Project" / "compose.yaml").resolve())
        assert stack.root == (tmp_path / "My Project").resolve()
        assert sorted(stack.services) == ["orders", "payments"]

    def test_compose_file_with_a_name_key(self, tmp_path):
        write_stack(tmp_path / "x", None, compose="name: Shop_2\n" + COMPOSE)
        stack = load_stack(compose_files=[tmp_path / "x" / "compose.yaml"])
        assert stack.name == "shop_2"

    def test_stack_yaml_naming_another_compose_file(self, tmp_path):
        folder = tmp_path / "s"
        write_stack(folder, "name: shop\ncompose: deploy/compose.yml\n", compose="")
        (folder / "deploy").mkdir()
        (folder / "deploy" / "compose.yml").write_text(COMPOSE)
        stack = load_stack(folder)
        assert sorted(stack.services) == ["orders", "payments"]

    def test_stack_yaml_naming_a_missing_compose_file(self, tmp_path):
        folder = tmp_path / "s"
        write_stack(folder, "name: shop\ncompose: nope.yaml\n")
        with pytest.raises(ComposeError) as info:
            load_stack(folder)
        assert "nope.yaml" in info.value.message
        assert "not found" in info.value.message
        assert info.value.hint

    def test_unknown_service_in_stack_yaml(self, tmp_path):
        path = write_stack(tmp_path / "s", "name: shop\nservices:\n  payment:\n    stateful: false\n")
        with pytest.raises(StackFileError) as info:
            load_stack(path)
        assert info.value.file == str(path.resolve())
        assert info.value.key == "services.payment"
        assert "did you mean 'payments'" in info.value.hint

    def test_bad_calls_entry_in_stack_yaml(self, tmp_path):
        path = write_stack(tmp_path / "s", "name: shop\nservices:\n  orders:\n    calls: [inventory]\n")
        with pytest.raises(StackFileError) as info:
            load_stack(path)
        assert info.value.key == "services.orders.calls"
        assert "inventory" in info.value.message
        assert "orders" in info.value.hint and "payments" in info.value.hint

    def test_schema_error_is_raised_before_compose_runs(self, tmp_path):
        path = write_stack(tmp_path / "s", "name: shop\nservices:\n  orders:\n    colour: red\n",
                           compose="services: [not valid compose\n")
        with pytest.raises(StackFileError) as info:
            load_stack(path)
        assert info.value.key == "services.orders.colour"


# --------------------------------------------------------------------------------------------
# stateful guesses and ports


@pytest.mark.parametrize(("image", "family"), [
    ("postgres", "postgres"),
    ("postgres:15-alpine", "postgres"),
    ("docker.io/library/postgres:16@sha256:abcd", "postgres"),
    ("localhost:5000/postgres", "postgres"),
    ("ghcr.io/immich-app/postgres:14-vectorchord0.4.3", "postgres"),
    ("supabase/postgres:15.8.1.060", "postgres"),
    ("postgis/postgis:16-3.4", "postgis"),
    ("bitnami/postgresql:16", "postgres"),
    ("mysql:8", "mysql"),
    ("mariadb:11", "mariadb"),
    ("mongo:7", "mongo"),
    ("bitnami/mongodb:7.0", "mongo"),
    ("redis:7-alpine", "redis"),
    ("bitnami/redis:7.2", "redis"),
    ("valkey/valkey:8", "valkey"),
    ("rabbitmq:3-management", "rabbitmq"),
    ("confluentinc/cp-kafka:7.6.0", "kafka"),
    ("clickhouse/clickhouse-server:24", "clickhouse"),
    ("docker.elastic.co/elasticsearch/elasticsearch:8.13.0", "elasticsearch"),
    ("minio/minio", "minio"),
    ("shop/postgres:dev", "postgres"),
    # tools around stores are not stores
    ("prometheuscommunity/postgres-exporter", None),
    ("rediscommander/redis-commander", None),
    ("provectuslabs/kafka-ui", None),
    ("mongo-express", None),
    ("redis/redisinsight", None),
    ("dpage/pgadmin4", None),
    # applications
    ("nginx:1.27", None),
    ("example/orders", None),
    ("", None),
    (None, None),
])
def test_image_family(image, family):
    assert image_family(image) == family


class TestStateful:
    def test_declared_in_stack_yaml_wins(self, make_stack):
        stack = make_stack({"cache": service("redis:7"), "api": service("example/api")},
                           meta={"services": {"cache": {"stateful": False}, "api": {"stateful": True}}})
        assert stateful_reason(stack, "cache") is None
        assert stateful_reason(stack, "api") == "declared stateful in stack.yaml"

    def test_guessed_from_image(self, make_stack):
        stack = make_stack({"db": service("postgres:16")})
        assert stateful_reason(stack, "db") == "guessed from image postgres:16 (postgres)"

    def test_guessed_from_named_data_volume(self, make_stack):
        stack = make_stack({
            "store": service("example/store", volumes=[named_volume("store-data", "/var/lib/store")]),
            "cache": service("example/cache", volumes=[named_volume("cache", "/data")]),
            "built": service(build="./built", volumes=[named_volume("built-data", "/var/lib/built")]),
            "bind": service("example/bind", volumes=[{"type": "bind", "source": "/srv", "target": "/var/lib/x"}]),
            "logs": service("example/logs", volumes=[named_volume("logs", "/logs")]),
        })
        assert "named volume at /var/lib/store" in stateful_reason(stack, "store")
        assert "named volume at /data" in stateful_reason(stack, "cache")
        # a built service holding data in a named volume is a store too (a search index, a queue)
        assert "named volume at /var/lib/built" in stateful_reason(stack, "built")
        assert stateful_reason(stack, "bind") is None
        assert stateful_reason(stack, "logs") is None

    def test_ports_come_from_every_source(self, make_stack):
        stack = make_stack({
            "api": service("example/api", expose=[8000], ports=[{"target": 9000, "published": "9000"}]),
            "db": service("postgres:16"),
            "db2": service("postgres:16", expose=[6000]),
            "nothing": service("example/nothing"),
        }, meta={"services": {"nothing": {"ports": [7000]}}})
        assert service_ports(stack, "api") == [8000, 9000]
        assert service_ports(stack, "api", {8000, 8001}) == [8000, 8001, 9000]
        assert service_ports(stack, "db") == [5432]  # the image's default port
        assert service_ports(stack, "db2") == [6000]  # declared ports win over the image default
        assert service_ports(stack, "nothing") == [7000]
        assert service_ports(stack, "nothing", set()) == [7000]
