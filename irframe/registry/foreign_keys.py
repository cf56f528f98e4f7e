"""Keys of other frameworks' option files, and where irframe keeps each setting.

An unknown key in an option file is answered with a pointer when another framework uses it
(``network_g`` -> ``model``), else with the closest valid key (:func:`key_hint`).
"""

from __future__ import annotations

from typing import Any

from irframe.text import suggest

FOREIGN_KEYS: dict[str, str] = {
    # BasicSR / Restormer
    "network_g": "BasicSR's name; here it is `model`",
    "network_d": "BasicSR's discriminator; irframe trains one `model`",
    "model_type": "BasicSR's model class; irframe has one trainer (remove it)",
    "num_gpu": "BasicSR's; the process count comes from `accelerate launch` / `torchrun`",
    "manual_seed": "BasicSR's name; here it is `seed`",
    "pixel_opt": "BasicSR's name; here it is `train.losses` (a list of {type, weight, ...})",
    "perceptual_opt": "BasicSR's name; here it is an entry of `train.losses`",
    "optim_g": "BasicSR's name; here it is `train.optim`",
    "pretrain_network_g": "BasicSR's name; here it is `train.pretrain.path`",
    "strict_load_g": "BasicSR's name; here it is `train.pretrain.strict`",
    "resume_state": "BasicSR's name; here it is `path.resume` (or --resume)",
    "batch_size_per_gpu": "BasicSR's name; here it is `batch_size` (per process)",
    "num_worker_per_gpu": "BasicSR's name; here it is `num_workers`",
    "use_shuffle": "BasicSR's name; here it is the loader key `shuffle`",
    "dataset_enlarge_ratio": "BasicSR's name; here it is the loader key `enlarge_ratio`",
    "use_hflip": "BasicSR's name; here it is `use_flip`",
    "mini_batch_sizes": "Restormer's name; here it is `train.progressive.batch_sizes`",
    "gt_sizes": "Restormer's name; here it is `train.progressive.patch_sizes`",
    "val_freq": "BasicSR's name; here it is `val.freq`",
    "save_img": "BasicSR's name; here it is `val.save_images`",
    "save_checkpoint_freq": "BasicSR's name; here it is `logger.checkpoint_freq`",
    "use_tb_logger": "BasicSR's name; here it is `logger.tensorboard`",
    "phase": "BasicSR's name; the dataset's role is its key under `datasets` (train, val...)",
    # KAIR
    "netG": "KAIR's name; here it is `model`",
    "G_lossfn_type": "KAIR's name; here it is `train.losses`",
    "G_optimizer_lr": "KAIR's name; here it is `train.optim.lr`",
    "dataloader_batch_size": "KAIR's name; here it is `batch_size`",
    "dataloader_num_workers": "KAIR's name; here it is `num_workers`",
    "dataroot_H": "KAIR's name; here it is `dataroot_gt`",
    "dataroot_L": "KAIR's name; here it is `dataroot_lq`",
    "H_size": "KAIR's name; here it is `gt_size`",
    # mmagic / mmengine
    "train_cfg": "mmagic's name; here it is `train`",
    "optim_wrapper": "mmagic's name; here it is `train.optim`",
    "param_scheduler": "mmagic's name; here it is `train.scheduler`",
    "train_dataloader": "mmagic's name; here datasets go under `datasets`",
    "val_evaluator": "mmagic's name; here it is `val.metrics`",
    "work_dir": "mmagic's name; here it is `path.experiments_root`",
    "load_from": "mmagic's name; here it is `train.pretrain.path`",
}
"""Keys of other frameworks' option files -> where irframe keeps that setting (unknown-key messages)."""

_BASICSR_NOTE = " (or run the file as a BasicSR file: it is translated automatically when recognised)"


def key_hint(key: Any, choices: list[str]) -> str:
    """What an unknown-key message adds: a pointer for another framework's key, or a close match."""
    foreign = FOREIGN_KEYS.get(str(key))
    if foreign is not None:
        note = _BASICSR_NOTE if foreign.startswith(("BasicSR", "Restormer")) else ""
        return f"; `{key}` is {foreign}{note}."
    close = suggest(key, choices)
    return f"; did you mean {close!r}?" if close else ""
