"""Optimiser-state sizes the benchmark reports at T5-base dims, counted from shapes."""

from adalink.bench import jax_side


def test_adalink_state_is_under_a_thousandth_of_full_fine_tuning_with_adamw():
  ft = jax_side.state_bytes_from_shapes("base", {"name": "ft"}, "adamw")
  ada = jax_side.state_bytes_from_shapes("base", {"name": "adalink", "rank": 4}, "adamw")
  assert ft == 2 * 4 * 247_577_856 + 4  # two moments per parameter, plus a step count
  assert ada == 2 * 4 * (2 * 768 * 4) + 4
  assert ada / ft < 1e-3


def test_factored_adafactor_state_is_small_for_full_fine_tuning_too():
  ft = jax_side.state_bytes_from_shapes("base", {"name": "ft"}, "adafactor")
  ada = jax_side.state_bytes_from_shapes("base", {"name": "adalink", "rank": 4}, "adafactor")
  # Factored second moments: rows + columns per matrix, so FT's state is ~0.2% of its weights;
  # rank-4 matrices are too thin to factor, so AdaLink keeps a full second moment.
  assert ft < 0.01 * 4 * 247_577_856
  assert ada >= 4 * 2 * 768 * 4
