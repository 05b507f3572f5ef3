"""gc of the images slices built, on the fake engine: stale sources, a gone stack and unlabelled images go;
images in use and those of the current sources stay."""

from __future__ import annotations

import shutil

from stacklet.config.stack import load_stack
from stacklet.labels import Label
from stacklet.planning.plan import make_plan
from stacklet.runtime.engine import SliceEngine

from .fake_driver import FakeDriver
from .test_snapshots import forum, link_proxies_answer  # noqa: F401  (the same copy of the forum, quiet link proxies)


def api_images(driver: FakeDriver) -> set[str]:
    return {t for t in driver.images_by_tag if t.startswith("stacklet-build/forum-api:")}


def test_gc_removes_built_images_of_old_sources_and_keeps_current_and_used_ones(forum, tmp_path):
    driver = FakeDriver({"migrate": ["running", "exited:0"]})
    engine = SliceEngine(driver, tmp_path / "home")
    engine.up(make_plan(forum, ["api"]), forum, "b1", snapshots=False)
    (old,) = api_images(driver)
    image = next(i for i in driver.images({}) if old in i.tags)
    assert image.labels[Label.BUILD_OF] == "forum/api" and image.labels[Label.BUILD_SOURCE] == str(forum.source)

    app = next(p for p in (forum.root / "services" / "api").rglob("*.py"))
    app.write_text(app.read_text() + "\n# edited\n")
    edited = load_stack(forum.source)
    engine.up(make_plan(edited, ["api"]), edited, "b2", snapshots=False)
    (new,) = api_images(driver) - {old}
    driver.add_image("stacklet-build/forum-api:0000000000000000")  # built before images were labelled

    decisions = {d.image: d for d in engine.gc_builds(dry_run=True)}
    assert not decisions[old].remove and decisions[old].reason == "in use by a container", "slice b1 runs on it"
    assert not decisions[new].remove and "in use" in decisions[new].reason
    engine.down("b1")
    decisions = {d.image: d for d in engine.gc_builds(dry_run=True)}
    assert decisions[old].remove and "stale: the sources of api changed" in decisions[old].reason
    assert decisions["stacklet-build/forum-api:0000000000000000"].remove
    assert old in driver.images_by_tag, "a dry run removes nothing"

    engine.down("b2")
    removed = {d.image for d in engine.gc_builds() if d.remove}
    assert old in removed and old not in driver.images_by_tag
    assert new in driver.images_by_tag and new not in removed, "the image of the current sources stays"
    shutil.rmtree(forum.root)
    assert all(d.remove and "is gone" in d.reason for d in engine.gc_builds(dry_run=True))
