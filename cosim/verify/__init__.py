"""SPICE verification of trained networks (`cosim verify`, and every K epochs during training).

* `cosim.verify.export`: the device layer of a network as a programmed RRAM crossbar + FeLIF neuron circuits
  (`device_layer`, `program`, `sample_jobs`; the weight-unit <-> siemens mapping is in its docstring);
* `cosim.verify.compare`: SPICE vs surrogate spikes, predictions and task metrics;
* `cosim.verify.runner`: `verify_model` (a model in memory), `verify_run` (a run folder: verify.json and plots),
  `verify_epoch` (the training hook: verify_history.jsonl);
* `cosim.verify.in_the_loop`: SPICE-in-the-loop fine-tuning (`cosim finetune`): the device layer's forward pass
  in SPICE, the gradient through the surrogate at the SPICE states.
"""
