"""Training library: state, sharded train step, checkpoints, logging, evaluation, the loop."""
