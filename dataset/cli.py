"""The `jedisith-dataset` command (also `python -m dataset`): the bot's labelled images.

    jedisith-dataset info|export DIR [--holdout]|import DIR [--user ID] [--guild ID|--shared]

A server's data is `--guild ID`; without it, what belongs to no server (imports). `export
--shared` writes the operator's default model's set: the servers that share their labels.

It works on the bot's data folder and database (DATA_DIR, DATABASE_URL) and loads no model;
every error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from dataset.database import display_url
from dataset.labels import HOLDOUT_PERCENT
from dataset.records import DatasetError
from dataset.store import DatasetStore

PROG = "jedisith-dataset"
EXIT_DATASET = 2
DEFAULT_DATA_DIR = Path("data/bot")


def build_parser() -> argparse.ArgumentParser:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"the bot's data folder (default: $DATA_DIR or {DEFAULT_DATA_DIR})",
    )
    where.add_argument(
        "--database-url",
        default=None,
        help="a SQLAlchemy URL (default: $DATABASE_URL or the SQLite file in the data folder)",
    )
    where.add_argument(
        "--guild", type=int, default=0, metavar="ID", help="a server's data (default: 0, none)"
    )
    parser = argparse.ArgumentParser(
        prog=PROG, description="The labelled images the bot collected."
    )
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("info", parents=[where], help="counts per class, conflicts, votes")
    export = actions.add_parser(
        "export", parents=[where], help="write DIR/jedi and DIR/sith for jedisith-train"
    )
    export.add_argument("folder", type=Path, metavar="DIR", help="a new or empty folder")
    export.add_argument(
        "--holdout", action="store_true", help="the holdout instead of the training split"
    )
    export.add_argument(
        "--shared", action="store_true", help="the sharing servers' labels, not one server's"
    )
    imports = actions.add_parser(
        "import", parents=[where], help="label the images of DIR/jedi and DIR/sith"
    )
    imports.add_argument("folder", type=Path, metavar="DIR", help="a folder of class folders")
    imports.add_argument(
        "--user", type=int, default=0, metavar="ID", help="the voter to record (default: 0)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = args.data_dir or Path(os.environ.get("DATA_DIR") or DEFAULT_DATA_DIR)
    url = args.database_url or os.environ.get("DATABASE_URL") or None
    try:
        with DatasetStore.open(data_dir, url) as store:
            if args.action == "export":
                _export(store, args.folder, args.holdout, args.guild, args.shared)
            elif args.action == "import":
                _import(store, args.folder, args.user, args.guild)
            else:
                _info(store, args.guild)
    except (DatasetError, SQLAlchemyError, OSError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"{PROG}: {message}", file=sys.stderr)
        return EXIT_DATASET
    return 0


def _export(store: DatasetStore, folder: Path, holdout: bool, guild: int, shared: bool) -> None:
    if shared:
        counts = store.export_shared(folder, holdout=holdout)
    else:
        counts = store.export(folder, guild, holdout=holdout)
    split = "holdout" if holdout else "training split"
    written = ", ".join(f"{n} {name}" for name, n in counts.items())
    print(f"{folder}: {written} ({split})")


def _import(store: DatasetStore, folder: Path, user_id: int, guild: int) -> None:
    report = store.import_folder(folder, user_id=user_id, guild_id=guild)
    for path, reason in report.skipped:
        print(f"{PROG}: skipped {path}: {reason}", file=sys.stderr)
    print(
        f"{folder}: {report.added} images added, {report.already} already stored, "
        f"{len(report.skipped)} files skipped"
    )


def _info(store: DatasetStore, guild: int) -> None:
    summary = store.summary(guild)
    lines = {
        "data": str(store.data_dir),
        "database": display_url(store.url),
        "server": str(guild) if guild else "none (imports)",
        "images": f"{summary.images:,} ({summary.unlabelled:,} without a label)",
        "votes": f"{summary.votes:,}",
    }
    for name, splits in summary.counts.items():
        lines[name] = f"{splits['train']:,} train, {splits['holdout']:,} holdout"
    lines["holdout"] = f"{HOLDOUT_PERCENT}% of the images, chosen by their hash"
    lines["since last training"] = f"{summary.since_last_training:,} images labelled"
    lines["conflicts"] = f"{summary.conflict_count:,}"
    width = max(len(key) for key in lines)
    for key, value in lines.items():
        print(f"{key:<{width}}  {value}")
    for sha256, votes in summary.conflicts[:10]:
        print(f"  {sha256[:12]}  " + ", ".join(f"{name} {n}" for name, n in votes.items()))
    if summary.conflict_count > 10:
        print(f"  ... and {summary.conflict_count - 10} more")
