"""Dataset checks, the training run, evaluation and export of the jedisith network."""
