"""RunConfig (the API's typed config, torch-free) mirrors worker.train_config.TrainConfig: every
training knob is accepted by both, with the same default, so the API and the worker never drift."""
import dataclasses

from backend.runs import RunConfig
from worker.train_config import TrainConfig

# Keys the studio sets itself (output_dir), renames (tasks -> task_weights) or resolves per worker.
STUDIO_OWNED = {"output_dir", "task_weights", "device"}


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None  # required in TrainConfig: RunConfig checks it per run kind


def test_every_training_knob_is_in_run_config_with_the_same_default():
    run_fields = RunConfig.model_fields
    for f in dataclasses.fields(TrainConfig):
        if f.name in STUDIO_OWNED:
            continue
        assert f.name in run_fields, f"RunConfig lacks the training option {f.name!r}"
        assert run_fields[f.name].get_default(call_default_factory=True) == _default(f), f.name


def test_run_config_turns_into_a_valid_train_config(tmp_path):
    cfg = RunConfig(family="paligemma", base_model="org/model", tasks={"detect": 1.0, "vqa": 0.5})
    tc = TrainConfig.from_dict(cfg.train_dict(str(tmp_path)))
    assert tc.task_weights == {"detect": 1.0, "vqa": 0.5} and tc.output_dir == str(tmp_path)
