"""What made a rerun after a kill differ from an uninterrupted run (found by bench/faults.py), kept fixed."""
from __future__ import annotations

import json
import random

import numpy
import torch

from cai.training.common import unchanged_rng
from cai.training.lora import sort_target_modules


def test_an_evaluation_inside_unchanged_rng_leaves_every_generator_as_it_was():
    torch.manual_seed(0), random.seed(0), numpy.random.seed(0)
    expected = torch.rand(3), random.random(), numpy.random.rand()
    torch.manual_seed(0), random.seed(0), numpy.random.seed(0)
    with unchanged_rng():  # what trainer.evaluate() does to them: a DataLoader iterator takes a seed, etc.
        torch.rand(5), random.random(), numpy.random.rand()
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]
    assert numpy.random.rand() == expected[2]


def test_adapter_target_modules_are_written_in_one_order(tmp_path):
    config = tmp_path / "adapter_config.json"
    config.write_text(json.dumps({"r": 4, "target_modules": ["v_proj", "k_proj", "q_proj"]}, indent=2))
    sort_target_modules(config)
    assert json.loads(config.read_text())["target_modules"] == ["k_proj", "q_proj", "v_proj"]
    assert config.read_text() == json.dumps({"r": 4, "target_modules": ["k_proj", "q_proj", "v_proj"]}, indent=2,
                                            sort_keys=True)
