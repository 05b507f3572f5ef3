"""Images named by their sources: same sources, same tag; any change to what the build reads, a new one."""

from __future__ import annotations

from stacklet.planning.images import is_source_tag, source_tag


def _context(tmp_path):
    context = tmp_path / "svc"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM debian:bookworm-slim\nCOPY app.py /app.py\n")
    (context / "app.py").write_text("print('hello')\n")
    return context


def test_same_sources_name_the_same_image(tmp_path):
    context = _context(tmp_path)
    first = source_tag("shop", "orders", {"context": str(context)})
    assert first == source_tag("shop", "orders", {"context": str(context)})
    assert first.startswith("stacklet-build/shop-orders:") and is_source_tag(first)


def test_a_changed_file_dockerfile_or_arg_names_a_new_image(tmp_path):
    context = _context(tmp_path)
    build = {"context": str(context)}
    before = source_tag("shop", "orders", build)
    (context / "app.py").write_text("print('changed')\n")
    after_file = source_tag("shop", "orders", build)
    (context / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    after_dockerfile = source_tag("shop", "orders", build)
    with_arg = source_tag("shop", "orders", {**build, "args": {"A": "1"}})
    assert len({before, after_file, after_dockerfile, with_arg}) == 4


def test_a_dockerfile_outside_the_context_counts_and_caches_do_not(tmp_path):
    context = _context(tmp_path)
    outside = tmp_path / "other.Dockerfile"
    outside.write_text("FROM debian:bookworm-slim\n")
    build = {"context": str(context), "dockerfile": "../other.Dockerfile"}
    before = source_tag("forum", "db", build)
    (context / "__pycache__").mkdir()
    (context / "__pycache__" / "app.pyc").write_bytes(b"\0")
    assert source_tag("forum", "db", build) == before
    outside.write_text("FROM debian:bookworm-slim\nRUN true\n")
    assert source_tag("forum", "db", build) != before
    assert not is_source_tag("shop/orders:dev")
