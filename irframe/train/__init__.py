"""The training engine (on accelerate). Importing this package imports nothing else.

One room per job:

* :mod:`.cli` - ``tools/train.py``'s command line; :mod:`.build` - options -> a running trainer
  (:func:`~.build.run_training`);
* :mod:`.trainer` - the thin loop; :mod:`.loss` - the weighted loss sum; :mod:`.ema` - weight EMA;
* :mod:`.optim` / :mod:`.schedulers` - registered optimizers and learning-rate schedules;
* :mod:`.data` - datasets and batch samplers from the options; :mod:`.validation` - scoring;
* :mod:`.checkpoint_folders` (files) / :mod:`.training_state` (all processes) - checkpoints and resume;
* :mod:`.experiment` - the run folder (:mod:`.lock` - one writer per folder; branches of older
  checkpoints); :mod:`.resume` - which options a resume may change; :mod:`.checks` - everything
  checked before the first iteration; :mod:`.logger` - log file, TensorBoard, progress bar;
* :mod:`.finetune` - loading pre-trained weights; :mod:`.demo` / :mod:`.synthetic` - the CPU demo.
"""
