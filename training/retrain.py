"""Retrain the network beside a running bot, and publish the result only if it is surely better.

    python -m training.retrain --data DIR --model MODEL_PATH --work WORK [--holdout DIR]
        [--epochs N] [--batch-size 32] [--val-split 0.2] [--seed 123] [--learning-rate 1e-4]
        [--ood-keep 0.95] [--notes TEXT] [--force] [--init MODEL_DIR] [--threads N] [--nice 10]

The bot runs this in a process of its own and follows it through the files of WORK, as
`training.protocol` names and describes them: `progress.jsonl` (a stage event as the run enters
each stage, an epoch event after each epoch), `result.json` (a `TrainerResult`, written once,
atomically, at the end of every run), `curves.png` and `confusion.png`, and `train.log`
(everything the run logs, tracebacks included; stdout and stderr stay quiet).

What is judged and how is `training.gate`'s. SIGTERM or SIGINT stops the run at the next batch
(or between stages; a few seconds at most, a LiteRT conversion being the longest step that is
not interrupted) and removes what it staged; a stop that arrives while publishing lets the
publish finish. The bot starts the trainer so that its own end sends the trainer a SIGTERM
(`bot.processes.die_with_parent`).

The exit status is `training.protocol.ExitCode`'s: published, refused and cancelled are clean
ends, failed and usage are not. `result.json` says the same and more; read it rather than the
code.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before anything imports TensorFlow

from training.gate import Gate, Refusal, RetrainError, RetrainOptions
from training.process import NICE, logging_to, lower_priority, on_signals, quiet_output
from training.progress import Cancellation, Cancelled
from training.protocol import (
    MIN_IMAGES_PER_CLASS,
    TRAINER_MODULE,
    ExitCode,
    ProgressLog,
    Status,
    TrainerResult,
    WorkFolder,
)

__all__ = ["RetrainOptions", "main", "retrain"]

log = logging.getLogger(TRAINER_MODULE)  # not __main__ under python -m


def retrain(options: RetrainOptions, cancellation: Cancellation | None = None) -> TrainerResult:
    """Train, score against the current model, publish if surely better; return the result.

    The result is also written to the work folder's `result.json`. Whatever happens (bad data,
    a refusal, a cancellation through `cancellation`, an unexpected error), this returns a
    result instead of raising; tracebacks go to the work folder's `train.log`.
    """
    work = WorkFolder(Path(options.work))
    work.path.mkdir(parents=True, exist_ok=True)
    work.result.unlink(missing_ok=True)
    work.progress.write_text("", encoding="utf-8")  # a fresh file for this run
    cancellation = cancellation or Cancellation()
    gate = Gate(options, ProgressLog(work.progress), cancellation)
    with logging_to(work.log):
        log.info("retrain: %s", options)
        try:
            gate.run()
        except Cancelled as stop:
            gate.end(Status.CANCELLED, gate.stopped_reason(stop.reason))
        except KeyboardInterrupt:
            gate.end(Status.CANCELLED, gate.stopped_reason("interrupted"))
        except Refusal as refusal:
            gate.end(Status.REFUSED, str(refusal))
        except RetrainError as error:
            gate.end(Status.FAILED, str(error))
        except Exception as error:  # every other failure: one line here, the traceback logged
            log.exception("the run failed")
            gate.end(Status.FAILED, gate.failure_line(error))
        finally:
            gate.clean_up()
        result = gate.result()
        result.write(work.result)
        log.info("%s: %s", result.status, result.reason)
    return result


# -- the command line ------------------------------------------------------------------------


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of exiting, so result.json can say it
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    defaults = RetrainOptions(Path("."), Path("."), Path("."))
    parser = _Parser(
        prog=f"python -m {TRAINER_MODULE}",
        description="Train a candidate on DATA, compare it with the current model in MODEL on "
        "the HOLDOUT images, and publish it into MODEL only if it is surely better. Progress and "
        "the result are written to WORK (progress.jsonl, result.json, train.log, plots).",
    )
    parser.add_argument("--data", type=Path, required=True, help="jedi/ and sith/ to train on")
    parser.add_argument("--holdout", type=Path, help="jedi/ and sith/ never trained on")
    parser.add_argument("--model", type=Path, required=True, help="the model folder served")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for this run")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--val-split", type=float, default=defaults.val_split)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="split and init seed")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--ood-keep", type=float, default=defaults.ood_keep)
    parser.add_argument("--notes", default="", help="what the data is, recorded in model.json")
    parser.add_argument("--force", action="store_true", help="publish even if it is worse")
    parser.add_argument("--init", type=Path, help="start from this model folder's weights")
    parser.add_argument(
        "--min-images",
        type=int,
        default=MIN_IMAGES_PER_CLASS,
        help="images per class in DATA needed to train (default: %(default)s)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="cap TensorFlow's and LiteRT's threads (0: all)"
    )
    parser.add_argument(
        "--nice", type=int, default=NICE, help=f"lower the priority by this much ({NICE})"
    )
    return parser


def _work_in(argv: list[str]) -> Path | None:
    """--work from a command line that may not parse, to put result.json where it belongs."""
    finder = argparse.ArgumentParser(add_help=False)
    finder.add_argument("--work", type=Path)
    try:
        known, _ = finder.parse_known_args(argv)
    except SystemExit:
        return None
    return known.work


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()  # the bot, whose end reaches this process as a SIGTERM
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        work = _work_in(argv)
        if work is not None:
            with contextlib.suppress(OSError):
                work.mkdir(parents=True, exist_ok=True)
                failed = TrainerResult(status=Status.FAILED, reason=f"bad command line: {error}")
                failed.write(WorkFolder(work).result)
        return ExitCode.USAGE
    options = RetrainOptions(
        data=args.data,
        model=args.model,
        work=args.work,
        holdout=args.holdout,
        epochs=args.epochs,
        batch_size=args.batch_size,
        val_split=args.val_split,
        seed=args.seed,
        learning_rate=args.learning_rate,
        ood_keep=args.ood_keep,
        notes=args.notes,
        force=args.force,
        threads=args.threads or None,
        min_images=max(args.min_images, 1),
        init=args.init,
        command=f"python -m {TRAINER_MODULE} " + shlex.join(argv),
    )
    work = WorkFolder(args.work)
    try:
        work.path.mkdir(parents=True, exist_ok=True)
        work.log.write_text("", encoding="utf-8")
    except OSError as error:
        print(f"error: cannot use --work {args.work}: {error.strerror or error}", file=sys.stderr)
        return ExitCode.FAILED
    cancellation = Cancellation()
    with on_signals(cancellation, parent), quiet_output(work.log):
        try:
            lower_priority(args.nice, args.threads or None)
        except Exception:
            traceback.print_exc()
        result = retrain(options, cancellation)
    try:
        print(f"{result.status}: {result.reason}", flush=True)
    except OSError:  # the reader (the bot) is gone
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    return ExitCode.of(result.status)


if __name__ == "__main__":
    raise SystemExit(main())
