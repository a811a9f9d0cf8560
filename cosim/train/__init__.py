"""Training runs of the paper's two networks (`cosim train`).

* `cosim.train.config`: `TrainConfig` (data, model, optimiser, run) from TOML with "section.key=value" overrides;
  shipped configs in `configs/` (music, tactile, tactile-lif).
* `cosim.train.models`: `MusicPredictor`, `TactileClassifier`.
* `cosim.train.tasks`: data, loss and metrics of the music and tactile tasks.
* `cosim.train.loop`: `Trainer` / `train` (progress bar, metrics.jsonl/csv, checkpoint every epoch, exact resume,
  NaN guard, curves.png).
"""
