"""Training with TRL: reward models (``RewardTrainer``, Bradley–Terry over a scalar head)
and policies (``DPOTrainer``), on preference pairs from a dataset snapshot.

This module knows nothing of Django: ``services.training_job_run`` gives it pairs, a
local model directory and a progress function, and gets back a trained model directory,
metrics and the held-out margins that calibration is fitted on.

- Pairs: ``prompt``/``chosen``/``rejected`` rows; rows with a ``ranking`` (best first) over
  ``responses`` are expanded to every ordered pair; **ties are left out** (a tie says
  neither response is better, which a Bradley–Terry pair cannot express; the snapshot's
  ``include_ties`` rows carry margin 0 and are dropped here).
- Split: a seeded held-out split, stratified by consensus-confidence band.
- Curriculum (optional): training pairs ordered easy → hard by consensus confidence and
  fed in that order (no shuffling).
- Encoding: each pair is tokenised as (prompt, response) with *left* truncation to
  ``max_length``, so the end of a long conversation — the response — is kept; the same
  encoding scores pairs at prediction time.  Pre-tokenising also avoids TRL's need for an
  eos token, which BERT tokenizers lack (it is set to the separator anyway).
- Device: accelerate picks it — CUDA where the worker has a GPU (bf16 where supported),
  else CPU (``use_cpu``, no bf16); gradient checkpointing is off (TRL turns it on).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Never reach a model hub: every model is a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    TrainerCallback,
)
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

# Only these files make up an artifact: weights as safetensors, configs and vocabularies
# as text.  Pickled files (training_args.bin, *.pt) are never stored or loaded.
ARTIFACT_SUFFIXES = (".safetensors", ".json", ".txt", ".model", ".jinja")

# progress(fields) -> True when training must stop (cancelled or out of time).
Progress = Callable[[dict[str, Any]], bool]


# ----------------------------------------------------------------------------------------
# Pairs, split, curriculum
# ----------------------------------------------------------------------------------------


def preference_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chosen/rejected pairs from snapshot rows: rankings expanded, ties left out."""
    pairs: list[dict[str, Any]] = []
    for row in rows:
        confidence = float(row.get("confidence", 1.0) or 0.0)
        ref = str(row.get("external_id", ""))
        if "ranking" in row and "responses" in row:
            texts = [r["text"] if isinstance(r, dict) else str(r) for r in row["responses"]]
            order = list(row["ranking"])
            for i, better in enumerate(order):
                for worse in order[i + 1 :]:
                    pairs.append(
                        {"prompt": row["prompt"], "chosen": texts[better],
                         "rejected": texts[worse], "confidence": confidence, "ref": ref}
                    )  # fmt: skip
            continue
        if not row.get("chosen") or not row.get("rejected"):
            continue
        margin = row.get("margin")
        if (margin is not None and float(margin) == 0.0) or row["chosen"] == row["rejected"]:
            continue  # a tie
        pairs.append(
            {"prompt": row.get("prompt", ""), "chosen": row["chosen"],
             "rejected": row["rejected"], "confidence": confidence, "ref": ref}
        )  # fmt: skip
    return pairs


def pairs_split(
    pairs: list[dict[str, Any]], *, eval_fraction: float, seed: int
) -> tuple[list[dict], list[dict], bool]:
    """(train, held-out, stratified?): a seeded split stratified by confidence band
    (< 0.6, < 0.8, < 0.95, ≥ 0.95), unstratified when a band is too small for it."""
    from sklearn.model_selection import train_test_split

    if len(pairs) < 4:
        raise ValueError(f"pairs: {len(pairs)} is too few to train and hold some out")
    indices = np.arange(len(pairs))
    bands = np.digitize([p["confidence"] for p in pairs], [0.6, 0.8, 0.95])
    n_eval = max(2, round(len(pairs) * eval_fraction))
    try:
        train, held = train_test_split(indices, test_size=n_eval, random_state=seed, stratify=bands)
        stratified = True
    except ValueError:  # a band with one pair, or fewer held-out pairs than bands
        train, held = train_test_split(indices, test_size=n_eval, random_state=seed)
        stratified = False
    return [pairs[i] for i in sorted(train)], [pairs[i] for i in sorted(held)], stratified


def curriculum_order(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Easy → hard: the most confident consensus first (stable for equal confidence)."""
    return sorted(pairs, key=lambda p: -p["confidence"])


# ----------------------------------------------------------------------------------------
# Encoding, device, scoring
# ----------------------------------------------------------------------------------------


def tokenizer_load(directory: str | Path):
    """A model directory's tokenizer, ready for pairs: left truncation, a pad token, and
    an eos token (BERT tokenizers have none: the separator stands in)."""
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    tokenizer.truncation_side = "left"
    if tokenizer.eos_token is None and tokenizer.sep_token is not None:
        tokenizer.eos_token = tokenizer.sep_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def encode(tokenizer, prompts: list[str], responses: list[str], max_length: int) -> list[list[int]]:
    """Token ids of (prompt, response) pairs, truncated from the left to ``max_length``."""
    return tokenizer(prompts, responses, truncation="longest_first", max_length=max_length)[
        "input_ids"
    ]


def device_settings() -> dict[str, Any]:
    """Trainer settings for the machine: CUDA (bf16 where supported) or CPU."""
    if torch.cuda.is_available():
        return {"use_cpu": False, "bf16": torch.cuda.is_bf16_supported(), "device": "cuda"}
    return {"use_cpu": True, "bf16": False, "device": "cpu"}


@torch.inference_mode()
def rewards_compute(model, tokenizer, ids: list[list[int]], *, batch_size: int = 64) -> np.ndarray:
    """Scalar rewards for encoded sequences, batched by length (less padding)."""
    device = next(model.parameters()).device
    model.eval()
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.empty(len(ids), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
        logits = model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).logits
        out[chunk] = logits.squeeze(-1).float().cpu().numpy()
    return out


def pair_margins(model, tokenizer, pairs: list[dict], *, max_length: int) -> np.ndarray:
    """reward(chosen) − reward(rejected) for each pair."""
    prompts = [p["prompt"] for p in pairs]
    responses = [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs]
    ids = encode(tokenizer, prompts + prompts, responses, max_length)
    rewards = rewards_compute(model, tokenizer, ids)
    return rewards[: len(pairs)] - rewards[len(pairs) :]


# ----------------------------------------------------------------------------------------
# Progress
# ----------------------------------------------------------------------------------------


class JobProgressCallback(TrainerCallback):
    """Reports step, epoch, loss, eval accuracy, pairs/s, ETA and CPU/memory to
    ``progress`` (throttled to one report per ``interval`` seconds, plus every evaluation),
    and stops training when ``progress`` says so."""

    def __init__(self, progress: Progress, *, pairs_per_step: int, interval: float = 1.0):
        import psutil

        self.progress = progress
        self.pairs_per_step = pairs_per_step
        self.interval = interval
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the measurement
        self.started = time.monotonic()
        self.last_report = 0.0
        self.pending: list[dict[str, Any]] = []
        self.loss: float | None = None
        self.eval_accuracy: float | None = None

    def _report(self, state, control, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_report < self.interval:
            return
        self.last_report = now
        elapsed = max(now - self.started, 1e-9)
        step, total = state.global_step, state.max_steps or 0
        fields = {
            "step": step,
            "total_steps": total,
            "epoch": float(state.epoch or 0.0),
            "loss": self.loss,
            "eval_accuracy": self.eval_accuracy,
            "pairs_per_second": step * self.pairs_per_step / elapsed if step else None,
            "eta_seconds": (total - step) * elapsed / step if step else None,
            "cpu_percent": self.process.cpu_percent(),
            "memory_mb": self.process.memory_info().rss / 2**20,
            "gpu_memory_mb": (
                torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
            ),
            "history": self.pending,
        }
        self.pending = []
        if self.progress(fields):
            control.should_training_stop = True

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self._report(state, control, force=True)

    def on_step_end(self, args, state, control, **kwargs):
        self._report(state, control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            self.pending.append(
                {"step": state.global_step, "epoch": state.epoch, "loss": self.loss}
            )

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        accuracy = metrics.get("eval_accuracy", metrics.get("eval_rewards/accuracies"))
        if accuracy is not None:
            self.eval_accuracy = float(accuracy)
        point = {"step": state.global_step, "epoch": state.epoch, "eval_accuracy": accuracy}
        if "eval_loss" in metrics:
            point["eval_loss"] = float(metrics["eval_loss"])
        self.pending.append(point)
        self._report(state, control, force=True)

    def on_train_end(self, args, state, control, **kwargs):
        self._report(state, control, force=True)


# ----------------------------------------------------------------------------------------
# Trainers
# ----------------------------------------------------------------------------------------


class CurriculumRewardTrainer(RewardTrainer):
    """A RewardTrainer that feeds pairs in dataset order (for curriculum learning)."""

    def _get_train_sampler(self, train_dataset=None):
        return torch.utils.data.SequentialSampler(train_dataset or self.train_dataset)


@dataclass
class TrainingResult:
    """What a finished run hands back for registration."""

    output_dir: Path
    metrics: dict[str, Any]
    heldout_margins: list[float] = field(default_factory=list)
    stopped: bool = False


def _common_args(config: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    device = device_settings()
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": config["epochs"],
        "learning_rate": config["learning_rate"],
        "per_device_train_batch_size": config["batch_size"],
        "per_device_eval_batch_size": config["batch_size"] * 2,
        "weight_decay": config["weight_decay"],
        "warmup_steps": config["warmup_steps"],
        "seed": config["seed"],
        "data_seed": config["seed"],
        "eval_strategy": "epoch",
        "save_strategy": "no",
        "logging_strategy": "steps",
        "logging_steps": config["logging_steps"],
        "report_to": "none",
        "disable_tqdm": True,
        # TRL turns gradient checkpointing on by default (now "activation checkpointing"):
        # off, since it slows small models and CPUs for no memory that matters here.
        "activation_checkpointing": False,
        "bf16": device["bf16"],
        "use_cpu": device["use_cpu"],
        "dataloader_num_workers": 0,
    }


def reward_dataset(tokenizer, pairs: list[dict], *, max_length: int) -> Dataset:
    """Pre-tokenised chosen/rejected ids (TRL's processed format)."""
    prompts = [p["prompt"] for p in pairs]
    return Dataset.from_dict(
        {
            "chosen_ids": encode(tokenizer, prompts, [p["chosen"] for p in pairs], max_length),
            "rejected_ids": encode(tokenizer, prompts, [p["rejected"] for p in pairs], max_length),
        }
    )


def reward_trainer_build(
    *,
    base_dir: str | Path,
    train_pairs: list[dict],
    eval_pairs: list[dict],
    config: dict[str, Any],
    output_dir: Path,
    callbacks: list | None = None,
):
    """TRL's RewardTrainer over a local model directory with a scalar head (num_labels=1)."""
    tokenizer = tokenizer_load(base_dir)
    torch.manual_seed(config["seed"])
    model = AutoModelForSequenceClassification.from_pretrained(str(base_dir), num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    if config["curriculum"]:
        train_pairs = curriculum_order(train_pairs)
    args = RewardConfig(
        **_common_args(config, output_dir),
        max_length=None,  # already truncated (from the left) while encoding
        center_rewards_coefficient=config["center_rewards_coefficient"],
    )
    trainer_class = CurriculumRewardTrainer if config["curriculum"] else RewardTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=reward_dataset(tokenizer, train_pairs, max_length=config["max_length"]),
        eval_dataset=reward_dataset(tokenizer, eval_pairs, max_length=config["max_length"]),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    return trainer


def artifact_save(model, tokenizer, output_dir: Path) -> Path:
    """The model as safetensors plus its config and tokenizer files (nothing pickled)."""
    final = output_dir / "model"
    model.save_pretrained(str(final), safe_serialization=True)
    tokenizer.save_pretrained(str(final))
    for path in final.iterdir():
        if path.is_file() and not path.name.endswith(ARTIFACT_SUFFIXES):
            path.unlink()
    return final


def _split_reported(
    pairs: list[dict], config: dict[str, Any], progress: Progress
) -> tuple[list[dict], list[dict], bool]:
    """Split off the held-out pairs and report the sizes and device to the job."""
    train_pairs, eval_pairs, stratified = pairs_split(
        pairs, eval_fraction=config["eval_fraction"], seed=config["seed"]
    )
    progress({"n_train": len(train_pairs), "n_eval": len(eval_pairs),
              "device": device_settings()["device"]})  # fmt: skip
    return train_pairs, eval_pairs, stratified


def reward_train(
    *,
    base_dir: str | Path,
    pairs: list[dict],
    config: dict[str, Any],
    work_dir: Path,
    progress: Progress,
) -> TrainingResult:
    """Train a reward model; returns the saved directory, metrics and held-out margins."""
    train_pairs, eval_pairs, stratified = _split_reported(pairs, config, progress)
    callback = JobProgressCallback(progress, pairs_per_step=config["batch_size"])
    trainer = reward_trainer_build(
        base_dir=base_dir, train_pairs=train_pairs, eval_pairs=eval_pairs, config=config,
        output_dir=work_dir / "trainer", callbacks=[callback],
    )  # fmt: skip
    started = time.monotonic()
    output = trainer.train()
    train_seconds = time.monotonic() - started
    stopped = trainer.state.global_step < trainer.state.max_steps
    margins = pair_margins(
        trainer.model, trainer.processing_class, eval_pairs, max_length=config["max_length"]
    )
    epochs_done = trainer.state.epoch or 0.0
    metrics = {
        "heldout_accuracy": float(np.mean(margins > 0)) if len(margins) else None,
        "heldout_pairs": len(eval_pairs),
        "train_pairs": len(train_pairs),
        "pairs_dropped_as_ties_or_empty": None,  # filled in by the caller
        "stratified_split": stratified,
        "train_loss": float(output.training_loss),
        "train_seconds": train_seconds,
        "train_pairs_per_second": len(train_pairs) * epochs_done / train_seconds
        if train_seconds
        else None,
        "epochs": epochs_done,
        "eval_accuracy_per_epoch": [
            {"epoch": row["epoch"], "accuracy": row["eval_accuracy"]}
            for row in trainer.state.log_history
            if "eval_accuracy" in row
        ],
        "mean_margin": float(np.mean(margins)) if len(margins) else None,
    }
    final = artifact_save(trainer.model, trainer.processing_class, work_dir)
    return TrainingResult(final, metrics, [float(m) for m in margins], stopped)


def dpo_train(
    *,
    base_dir: str | Path,
    pairs: list[dict],
    config: dict[str, Any],
    work_dir: Path,
    progress: Progress,
) -> TrainingResult:
    """Train a causal LM policy with TRL's DPOTrainer (the reference model is the base)."""
    train_pairs, eval_pairs, stratified = _split_reported(pairs, config, progress)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(config["seed"])
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))

    def dataset(rows: list[dict]) -> Dataset:
        return Dataset.from_list(
            [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
             for r in rows]
        )  # fmt: skip

    args = DPOConfig(
        **_common_args(config, work_dir / "trainer"),
        max_length=config["max_length"],
        beta=config["beta"],
    )
    callback = JobProgressCallback(progress, pairs_per_step=config["batch_size"])
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=dataset(train_pairs),
        eval_dataset=dataset(eval_pairs), processing_class=tokenizer, callbacks=[callback],
    )  # fmt: skip
    for noisy in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(noisy)
    started = time.monotonic()
    output = trainer.train()
    train_seconds = time.monotonic() - started
    stopped = trainer.state.global_step < trainer.state.max_steps
    final_eval = trainer.evaluate()
    epochs_done = trainer.state.epoch or 0.0
    metrics = {
        "heldout_reward_accuracy": final_eval.get("eval_rewards/accuracies"),
        "heldout_reward_margin": final_eval.get("eval_rewards/margins"),
        "heldout_loss": final_eval.get("eval_loss"),
        "heldout_pairs": len(eval_pairs),
        "train_pairs": len(train_pairs),
        "stratified_split": stratified,
        "train_loss": float(output.training_loss),
        "train_seconds": train_seconds,
        "train_pairs_per_second": len(train_pairs) * epochs_done / train_seconds
        if train_seconds
        else None,
        "epochs": epochs_done,
        "beta": config["beta"],
    }
    final = artifact_save(trainer.model, tokenizer, work_dir)
    return TrainingResult(final, metrics, [], stopped)


def finite(value: Any) -> Any:
    """JSON-safe numbers (NaN and infinities become None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
