"""The learning-rate schedule and the optimiser factory."""

import numpy as np
import pytest

from adalink.train import optim


def test_linear_warmup_then_rsqrt_decay():
  sched = optim.warmup_rsqrt_schedule(1e-3, 100)
  for step in (0, 1, 10, 50, 99):
    np.testing.assert_allclose(float(sched(step)), 1e-3 * step / 100, rtol=1e-6)
  np.testing.assert_allclose(float(sched(100)), 1e-3, rtol=1e-6)
  for step in (100, 400, 2500, 10_000):
    np.testing.assert_allclose(float(sched(step)), 1e-3 * np.sqrt(100 / step), rtol=1e-6)
  # Quadrupling the step halves the rate: 1/sqrt(step).
  np.testing.assert_allclose(float(sched(1600)) / float(sched(400)), 0.5, rtol=1e-6)


def test_no_warmup_is_pure_rsqrt():
  sched = optim.warmup_rsqrt_schedule(0.03, 0)
  np.testing.assert_allclose(float(sched(0)), 0.03, rtol=1e-6)
  np.testing.assert_allclose(float(sched(9)), 0.01, rtol=1e-6)


@pytest.mark.parametrize(
  "opt, sched, message",
  [
    ({"name": "sgd"}, {"peak_lr": 1e-3}, "optimizer.name"),
    ({"name": "adafactor"}, {"peak_lr": 0.0}, "schedule.peak_lr"),
    ({"name": "adafactor"}, {"peak_lr": 1e-3, "warmup_steps": -1}, "schedule.warmup_steps"),
    ({"name": "adafactor", "grad_accum_steps": 0}, {"peak_lr": 1e-3}, "grad_accum_steps"),
  ],
)
def test_bad_optimizer_config(opt, sched, message):
  with pytest.raises(ValueError, match=message):
    optim.make_optimizer(opt, sched)
