"""The benchmarks run and their own checks are right; no timing is asserted here.

Fast on purpose (no TensorFlow, no trained model): every benchmark module imports and parses
its options; the statistics, the report and the interleaving behave; the render benchmark's
"same maps" check passes on our grid and fails on a wrong one; the throughput burst and lag
monitor run against the real `ModelWorker` with a no-op backend.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time

import numpy as np
import pytest

from benchmarks import __main__ as runner
from benchmarks import _common
from benchmarks._common import CheckFailed, Outcome, Report, Stats, interleave

MODULES = [f"benchmarks.{name}" for name in runner.BENCHMARKS]
HELPERS = ["benchmarks._common", "benchmarks._notebook", "benchmarks._botproc"]


@pytest.mark.parametrize("module", MODULES + HELPERS)
def test_every_module_imports_without_heavy_dependencies(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("module", MODULES)
def test_every_benchmark_has_a_command_line(module: str, capsys) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    assert "--quick" in usage and "--json" in usage


def test_runner_lists_every_benchmark_module() -> None:
    from pathlib import Path

    folder = Path(runner.__file__).parent
    scripts = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(runner.BENCHMARKS)


def test_stats_percentiles_and_rates() -> None:
    stats = Stats.of(list(range(1, 101)))
    assert stats.n == 100 and stats.median == pytest.approx(50.5)
    assert stats.p5 < stats.q1 < stats.median < stats.q3 < stats.p95
    assert (stats.minimum, stats.maximum) == (1, 100)
    rates = Stats.of([0.5, 1.0, 2.0]).inverse(10.0)  # durations -> 10 / duration
    assert rates.median == pytest.approx(10.0)
    assert rates.minimum == pytest.approx(5.0) and rates.maximum == pytest.approx(20.0)
    assert rates.p5 <= rates.median <= rates.p95
    with pytest.raises(ValueError):
        Stats.of([])


@pytest.mark.parametrize(
    ("better", "value", "target", "met"),
    [
        ("higher", 25.0, 25.0, True),
        ("higher", 24.9, 25.0, False),
        ("lower", 19.9, 20.0, True),
        ("lower", 20.0, 20.0, False),
        ("at_most", 300.0, 300.0, True),
        ("at_most", 300.1, 300.0, False),
    ],
)
def test_outcome_verdicts(better: str, value: float, target: float, met: bool) -> None:
    outcome = Outcome("x", value, "x", target, better)
    assert outcome.met is met
    assert ("NOT MET" in outcome.line()) is (not met)
    assert Outcome("x", value, "ms", None, better).met is None


def test_interleave_alternates_and_counts() -> None:
    calls: list[str] = []
    samples = interleave(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        per_round={"b": 2},
        warmup=1,
    )
    warm, first, second, third = ["a", "b"], ["a", "b", "b"], ["b", "b", "a"], ["a", "b", "b"]
    assert calls == [*warm, *first, *second, *third]
    assert len(samples["a"]) == 3 and len(samples["b"]) == 6
    assert all(s >= 0 for s in samples["a"] + samples["b"])


def test_report_prints_outcomes_last_and_writes_json(tmp_path, capsys) -> None:
    report = Report("demo", "a demo", info=_common.machine())
    report.header()
    report.stats("t_ms", "timing", Stats.of([1.0, 2.0, 3.0]), "ms")
    report.check("works", True, "fine")
    report.outcome("latency", 12.0, unit="ms", target=40.0, better="lower")
    report.outcome("speed-up", 30.0, target=25.0)
    assert report.finish(tmp_path / "demo.json") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1].strip().startswith("speed-up: 30.0x") and "met" in lines[-1]
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert [o["name"] for o in saved["outcomes"]] == ["latency", "speed-up"]
    assert saved["figures"]["t_ms"]["median"] == 2.0
    assert saved["machine"]["cores_usable"] >= 1


def test_a_failed_check_fails_the_benchmark_loudly(capsys) -> None:
    report = Report("demo", "a demo", info={})
    with pytest.raises(CheckFailed):
        report.check("scores match", False, "off by 0.5")

    def failing(_args):
        report.check("scores match", False, "off by 0.5")

    class Args:
        json = None

    assert _common.run_main(failing, Args()) == 1
    assert "BENCHMARK CHECK FAILED" in capsys.readouterr().err


def test_machine_description_names_cores_and_versions() -> None:
    info = _common.machine()
    text = _common.describe_machine(info)
    assert "cores" in text and info["python"] in text
    assert info["numpy"] == np.__version__


def test_sample_images_are_200x200_pngs_and_cached(tmp_path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setattr(_common, "OUT", tmp_path)
    first = _common.sample_pngs(2, seed=1)
    assert len(first) == 2 and first[0] != first[1]
    for data in first:
        with Image.open(__import__("io").BytesIO(data)) as image:
            assert image.format == "PNG" and image.size == (200, 200)
    assert _common.sample_pngs(2, seed=1) == first  # read back from the cache
    assert len(list((tmp_path / "images" / "seed1").glob("*.png"))) == 2


def test_resolve_model_rejects_a_folder_without_a_model(tmp_path) -> None:
    with pytest.raises(SystemExit):
        _common.resolve_model(tmp_path)


# -- the correctness checks inside the benchmarks ---------------------------------------------


def _fake_features(layers: int = 1):
    from model.runtime import FeatureMaps

    rng = np.random.default_rng(0)
    shapes = [(20, 20, 16), (12, 12, 32)][:layers]
    maps = tuple(rng.random(s, dtype=np.float32) * 3 for s in shapes)
    return FeatureMaps(0.3, ("conv1", "conv2")[:layers], maps)


def test_render_check_accepts_our_grid() -> None:
    from benchmarks.render import check_same_maps

    report = Report("render", "test", info={})
    check_same_maps(_fake_features(), report)
    assert report.checks[-1]["ok"]


def test_render_check_catches_maps_out_of_order(monkeypatch) -> None:
    import model.render
    from benchmarks.render import check_same_maps

    real_tile = model.render.tile

    def swapped(maps, per_row=model.render.MAPS_PER_ROW):
        return real_tile(maps[:, :, [1, 0, *range(2, maps.shape[2])]], per_row)

    monkeypatch.setattr(model.render, "tile", swapped)
    with pytest.raises(CheckFailed, match="our tile differs"):
        check_same_maps(_fake_features(), Report("render", "test", info={}))


def test_render_tiles_are_cut_at_the_grid_positions() -> None:
    from benchmarks.render import expected_tile, our_tiles

    maps = _fake_features(2).maps[1]  # 12x12 maps are enlarged to at least MIN_TILE pixels
    tiles = our_tiles(maps)
    assert len(tiles) == maps.shape[2]
    scale = tiles[0].shape[0] // maps.shape[0]
    assert scale > 1
    for channel in (0, 9, 31):
        np.testing.assert_array_equal(tiles[channel], expected_tile(maps[:, :, channel], scale))


def test_latency_score_check_compares_batched_and_single_scores() -> None:
    from benchmarks.latency import score_differences

    images = np.random.default_rng(1).integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)

    def keras_model(x, training):
        assert x.dtype == np.float32 and training is False
        return x.mean(axis=(1, 2, 3))[:, None] / 255

    class Exact:
        def scores(self, batch):
            return batch.astype(np.float32).mean(axis=(1, 2, 3)) / 255

    class OffWhenAlone(Exact):
        def scores(self, batch):
            return super().scores(batch) + (0.01 if len(batch) == 1 else 0.0)

    assert max(score_differences(Exact(), keras_model, images).values()) < 1e-6
    off = score_differences(OffWhenAlone(), keras_model, images)
    assert off["batch"] < 1e-6 and off["single"] == pytest.approx(0.01, abs=1e-6)


async def test_lag_monitor_sees_a_blocked_event_loop() -> None:
    from benchmarks.throughput import LagMonitor

    async with LagMonitor(period=0.002) as monitor:
        await asyncio.sleep(0.01)
        time.sleep(0.05)  # block the loop
        await asyncio.sleep(0.01)
    assert monitor.worst >= 0.04  # it cannot wake up before the loop is free again
    assert len(monitor.lags) == len(monitor.busy) >= 3
    # time.sleep blocks without computing: that wake-up was late for want of the thread's CPU,
    # and the monitor tells the two apart.
    assert 0 <= monitor.worst_busy < monitor.worst


async def test_throughput_burst_gives_each_image_its_result(tmp_path, monkeypatch) -> None:
    from benchmarks.costs import noop_classifier
    from benchmarks.throughput import burst
    from model.worker import ModelWorker

    monkeypatch.setattr(_common, "OUT", tmp_path)
    pngs = [*_common.sample_pngs(2, seed=2), b"not an image"]
    worker = ModelWorker(noop_classifier)
    worker.start()
    try:
        elapsed, monitor, results, cpu = await burst(worker, pngs)
    finally:
        await worker.aclose()
    assert elapsed > 0 and monitor.lags and cpu > 0
    assert [r[0].score for r in results[:2]] == [0.25, 0.25]
    assert type(results[2][0]).__name__ == "NotAnImageError"


def test_proc_status_reads_peak_rss() -> None:
    from benchmarks._botproc import proc_status

    status = proc_status(os.getpid())
    assert status["VmHWM"] >= status["VmRSS"] > 1000  # kB


def test_bot_environment_points_at_the_server_and_disables_cooldown(tmp_path) -> None:
    from benchmarks._botproc import BotProcess

    class Server:
        token = "t0ken"
        api_url = "http://127.0.0.1:1/api/v10"
        gateway_url = "ws://127.0.0.1:1/gateway"

    env = BotProcess(Server(), tmp_path, backend="tensorflow").environment()
    assert env["DISCORD_TOKEN"] == "t0ken" and env["DISCORD_API_URL"] == Server.api_url
    assert env["DISCORD_GATEWAY_URL"] == Server.gateway_url
    assert env["MODEL_BACKEND"] == "tensorflow" and env["COOLDOWN_RATE"] == "0"
    assert env["MODEL_PATH"] == str(tmp_path.resolve())


def test_throughput_child_gets_the_same_worker_options() -> None:
    import argparse

    from benchmarks.throughput import tuning_args

    args = argparse.Namespace(
        images=64, batch=8, wait_ms=0.0, decode_threads=None, litert_threads=1, gc_freeze=True
    )
    assert tuning_args(args) == [
        *("--images", "64", "--batch", "8", "--wait-ms", "0.0", "--litert-threads", "1"),
        "--gc-freeze",
    ]


def test_ratios_near_one_keep_two_decimals() -> None:
    assert Outcome("r", 0.994, "x", 1.0, "higher").line().startswith("r: 0.99x")
    assert Outcome("r", 24.84, "x", 25.0, "higher").line().startswith("r: 24.8x")


def test_ood_scores_thresholds_and_buckets() -> None:
    from benchmarks._ood_scores import (
        Scored,
        auroc,
        confidence_ood,
        extremes,
        group_row,
        keep_threshold,
        refused_share,
        sure_bucket,
    )

    # Plain confidence as an OOD score: the smaller |logit|, the higher (more unlike).
    assert list(confidence_ood(np.array([-4.0, 0.5, 3.0]))) == [-4.0, -0.5, -3.0]
    inside = np.arange(100, dtype=np.float64)  # 0..99
    threshold = keep_threshold(inside, 0.95)
    assert refused_share(inside, threshold) == pytest.approx(0.04)  # 96..99 above it
    assert np.isnan(refused_share(np.zeros(0), threshold))
    # AUROC: unlike images (positives) all above the in-distribution ones -> 1; the reverse 0.
    assert auroc(inside, inside + 1000) == 1.0 and auroc(inside + 1000, inside) == 0.0
    assert auroc(inside, inside) == pytest.approx(0.5)

    scores = np.array([0.99, 0.95, 0.02, 0.6, 0.93])
    labels = np.array([1, 0, 0, 1, 1])  # the 0.95 is a sure mistake
    sure = sure_bucket(scores, labels, 0.9)
    assert sure["count"] == 4 and sure["accuracy"] == pytest.approx(0.75)
    assert sure["confidence"] == pytest.approx((0.99 + 0.95 + 0.98 + 0.93) / 4)
    assert sure_bucket(np.array([0.5]), np.array([1]))["count"] == 0

    names = ["a", "b", "c", "d"]
    values = np.array([3.0, 1.0, 4.0, 2.0])
    assert extremes(names, values, 2, lowest=True) == [("b", 1.0), ("d", 2.0)]
    assert extremes(names, values, 1, lowest=False) == [("c", 4.0)]

    def scored(logits, distances) -> Scored:
        logits = np.asarray(logits, dtype=np.float64)
        raw = 1 / (1 + np.exp(-logits))
        return Scored([str(i) for i in range(len(logits))], logits, raw, raw, np.asarray(distances))

    held_out = scored([-6.0, 5.0, -4.0, 7.0], [1.0, 2.0, 3.0, 4.0])
    group = scored([0.1, -9.0], [5.0, 2.5])  # one unsure and far, one very sure and near
    row = group_row(held_out, group, keep_threshold(held_out.confidence_ood), 3.5)
    assert row["images"] == 2
    assert row["refused_detector"] == 50.0 and row["refused_confidence"] == 50.0
    assert row["auroc_detector"] == pytest.approx(100 * (4 + 2) / 8)
    assert row["sure"] == 50.0 and row["median_distance"] == pytest.approx(3.75)
    pooled = Scored.pooled([held_out, Scored.pooled([]), group])
    assert len(pooled) == 6 and list(pooled.distances[-2:]) == [5.0, 2.5]


def test_soak_waves_add_up_and_end_at_the_warm_up() -> None:
    from benchmarks.soak import plan_waves

    for seed in range(20):
        rng = np.random.default_rng(seed)
        sizes = plan_waves(3000, 100, 300, [300], rng, first=300)
        assert sum(sizes) == 3000 and sizes[0] == 300
        assert all(100 <= s <= 300 for s in sizes)
        ends = np.cumsum(plan_waves(3000, 100, 300, [300, 1000], np.random.default_rng(seed)))
        assert {300, 1000, 3000} <= set(ends.tolist())
    assert plan_waves(600, 50, 150, [200], np.random.default_rng(0), first=150)[:2] == [150, 50]
    with pytest.raises(ValueError):
        plan_waves(10, 5, 4, [], np.random.default_rng(0))


def test_soak_counts_each_commands_replies() -> None:
    from benchmarks.soak import ReplyLog, reply_kind, tally

    def bot_message(replying_to: str | None, content: str = "**Sith** - score 0.9") -> dict:
        reference = {"message_id": replying_to} if replying_to else None
        data = {"author": {"id": "42"}, "content": content, "message_reference": reference}
        return {"type": "message_create", "data": data}

    log = ReplyLog("42", waiting={"1", "2", "3"})
    log.feed(bot_message("1"), 1.0)
    log.feed(bot_message("2", "I'm busy with a lot of images right now."), 2.0)
    log.feed(bot_message("2"), 3.0)  # answered twice
    log.feed({"type": "message_update", "data": bot_message("3")["data"]}, 4.0)  # an edit
    log.feed({"type": "message_create", "data": {"author": {"id": "7"}, "content": "hi"}}, 5.0)
    log.feed(bot_message(None), 6.0)  # said something to nobody
    log.feed(bot_message("99"), 7.0)  # replied to something that is not a command
    assert log.waiting == {"3"} and log.arrived == {"1": 1.0, "2": 2.0, "99": 7.0}
    result = tally(["1", "2", "3"], log)
    assert result.missing == ["3"] and result.doubled == {"2": 2} and result.stray == 2
    assert not result.ok
    clean = ReplyLog("42")
    clean.feed(bot_message("1"), 1.0)
    assert tally(["1"], clean).ok

    assert reply_kind(log.contents["1"]) == "verdict"
    assert reply_kind(log.contents["2"]) == "busy"
    refused = "**Not a Jedi or a Sith?** - this doesn't look like what I learned from (it would"
    assert reply_kind(refused) == "refused"
    mixed = f"1. `a.png`: {refused}\n2. `b.png`: **Can't tell** - score 0.55 (too close)"
    assert reply_kind(mixed) == "verdict"
    note = "-# The score is the network's probability of **Sith**: 0 is Jedi, 1 is Sith."
    assert reply_kind(f"`x.txt`: That file is not an image I can read.\n{note}") == "other"


def test_soak_settings_parse_and_reject() -> None:
    import argparse

    from benchmarks.soak import parse_setting

    assert parse_setting("BATCH_SIZE=8, MAX_IMAGES=4") == {"BATCH_SIZE": "8", "MAX_IMAGES": "4"}
    assert parse_setting("") == {}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_setting("BATCH_SIZE")
