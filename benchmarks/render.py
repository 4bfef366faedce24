"""`!features` rendering, all five layers: the notebook's pyplot subplots vs `render_features`.

* notebook: one pyplot figure (16x16 inches, 100 dpi) per layer, one subplot per map
  (16, 32, 64, 64, 64 of them), each figure saved to PNG (`benchmarks/_notebook.py`).
* ours: `model.render.render_features`: the maps tiled in numpy into one image per layer,
  given a title strip and encoded to PNG by Pillow.

Both draw the same feature maps of one image (from our LiteRT `features` signature). Before
timing, a check: the array each notebook subplot shows (`ax.images[0].get_array()`) equals
the corresponding map, and our grid's tile for that map is exactly the notebook array
normalised to 0..1 and coloured with viridis, in the same order (8 to a row) - the same maps.
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks._common import (
    Report,
    Stats,
    interleave,
    parser,
    resolve_model,
    run_main,
    sample_pngs,
)

TARGET = 5.0


def our_tiles(maps: np.ndarray) -> list[np.ndarray]:
    """Cut `model.render.tile(maps)` back into its tiles (RGB, at tile size), in map order."""
    from model.render import MAPS_PER_ROW, MIN_TILE, PADDING, tile

    height, width, count = maps.shape
    scale = max(1, -(-MIN_TILE // max(height, width)))
    tile_h, tile_w = height * scale, width * scale
    mosaic = tile(maps)
    tiles = []
    for channel in range(count):
        row, column = divmod(channel, MAPS_PER_ROW)
        top = PADDING + row * (tile_h + PADDING)
        left = PADDING + column * (tile_w + PADDING)
        tiles.append(mosaic[top : top + tile_h, left : left + tile_w])
    return tiles


def expected_tile(array: np.ndarray, scale: int) -> np.ndarray:
    """What our grid must show for a map the notebook drew as `array`: min-max to 0..1,
    viridis (the colormap `imshow` used), enlarged `scale` times."""
    from matplotlib import colormaps

    a = np.asarray(array, dtype=np.float32)
    span = float(a.max() - a.min())
    normalised = (a - a.min()) / span if span > 0 else np.zeros_like(a)
    lut = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    rgb = lut[(normalised * 255 + 0.5).astype(np.uint8)]
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)


def check_same_maps(features, report: Report) -> None:
    """The notebook's subplots and our tiles show the same maps, in the same order."""
    from benchmarks._notebook import notebook_render
    from model.render import MIN_TILE

    batches = [m[None] for m in features.maps]
    problems: list[str] = []
    counted = {"maps": 0}

    def inspect(layer_index: int, figure) -> None:
        maps = features.maps[layer_index]
        height, width, count = maps.shape
        scale = max(1, -(-MIN_TILE // max(height, width)))
        tiles = our_tiles(maps)
        axes = figure.axes
        if len(axes) != count:
            problems.append(f"layer {layer_index + 1}: {len(axes)} subplots for {count} maps")
            return
        for channel, ax in enumerate(axes):
            shown = np.asarray(ax.images[0].get_array())
            if not np.array_equal(shown, maps[:, :, channel]):
                problems.append(f"layer {layer_index + 1} map {channel}: notebook array differs")
            elif not np.array_equal(tiles[channel], expected_tile(shown, scale)):
                problems.append(f"layer {layer_index + 1} map {channel}: our tile differs")
            counted["maps"] += 1

    notebook_render(batches, inspect=inspect)
    report.check(
        "same maps: notebook subplots == our grid's tiles",
        not problems,
        "; ".join(problems[:5])
        or f"all {counted['maps']} maps of 5 layers: subplot arrays equal the feature maps, and "
        "each of our tiles is that array min-max normalised, viridis, at its grid position",
    )


def run(args: argparse.Namespace) -> Report:
    from benchmarks._notebook import notebook_render
    from model.preprocess import load_image
    from model.render import render_features
    from model.runtime import Classifier

    report = Report("render", "!features, all five layers: notebook pyplot vs render_features")
    model_dir, origin = resolve_model(args.model)
    rounds = args.rounds or (2 if args.quick else 6)
    report.header(
        f"model: {origin}\n{rounds} rounds, interleaved; each round: the notebook's five "
        "figures, then our five grids (order alternating between rounds)"
    )
    classifier = Classifier.load(model_dir, "litert")
    features = classifier.features(load_image(sample_pngs(1)[0]))
    batches = [m[None] for m in features.maps]

    report.section("correctness")
    check_same_maps(features, report)
    ours_files = render_features(features)
    notebook_files = notebook_render(batches)
    report.figure(
        "png_kib_notebook",
        "notebook PNGs, total",
        sum(len(f) for f in notebook_files) / 1024,
        "KiB",
    )
    report.figure(
        "png_kib_ours", "our PNGs, total", sum(len(f[1]) for f in ours_files) / 1024, "KiB"
    )

    report.section("timing (all five layers to PNG bytes)")
    samples = interleave(
        {"notebook": lambda: notebook_render(batches), "ours": lambda: render_features(features)},
        rounds,
        per_round={"ours": 3},
        warmup=1,
    )
    notebook = report.stats(
        "notebook_s", "notebook: figure + subplot per map", Stats.of(samples["notebook"]), "s", 3
    )
    ours = report.stats("ours_s", "ours: render_features", Stats.of(samples["ours"]), "s", 3)
    report.outcome(
        "render: notebook / ours (medians)", notebook.median / ours.median, target=TARGET
    )
    return report


def main(argv: list[str] | None = None) -> int:
    p = parser("render", __doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=None, help="default 6 (2 with --quick)")
    args = p.parse_args(argv)
    return run_main(run, args)


if __name__ == "__main__":
    raise SystemExit(main())
