#!/usr/bin/env python
r"""Will a run fit? Per-device memory of a training config, from shapes alone (nothing allocated).

  python scripts/plan_memory.py --config=configs/glue.py:flan_adalink_r4 --mesh=-1,8 --devices=8 \
      --device=h100-80g
  python scripts/plan_memory.py --config=configs/glue.py:flan_ft --mesh=2,8 --device=tpu-v4
  python scripts/plan_memory.py --config=configs/glue.py:flan_ft --mesh=1,8,1 --device=h100-80g  # FSDP

Prints frozen weights, trainable weights, gradients, optimiser state and an activation estimate per
device and for the whole model, and whether the total fits --device (exit status 1 if it does not).
The work is `adalink.train.memory_plan`.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from adalink import cli  # noqa: E402

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/glue.py:flan_ft")
flags.DEFINE_list(
  "mesh", None, "DATA,MODEL or DATA,FSDP,MODEL mesh (one may be -1); default: the config's"
)
flags.DEFINE_integer("devices", None, "devices to plan for (resolves a -1 in the mesh)")
flags.DEFINE_string("device", None, "a named device to check the plan against, e.g. h100-80g")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  from adalink.train import memory_plan

  mesh = [int(x) for x in flags.FLAGS.mesh] if flags.FLAGS.mesh else None
  plan = memory_plan.plan_memory(flags.FLAGS.config, mesh, flags.FLAGS.devices)
  print(memory_plan.format_plan(plan, flags.FLAGS.device))
  if flags.FLAGS.device and not memory_plan.fits(plan, flags.FLAGS.device)[0]:
    return 1
  return 0


if __name__ == "__main__":
  cli.run_absl(main)
