"""The command line that runs `train_driver.py` (shared by the trainer tests)."""

import json
import os
import sys

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_driver.py")


def driver_command(
  workdir, out, overrides, devices=1, distributed=None, config="glue", variant="smoke"
):
  args = {
    "workdir": str(workdir),
    "out": str(out),
    "devices": devices,
    "overrides": overrides,
    "config": config,
    "variant": variant,
  }
  if distributed:
    args["distributed"] = distributed
  return [sys.executable, DRIVER, json.dumps(args)]
