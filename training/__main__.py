"""`python -m training DATA_DIR` is `jedisith-train DATA_DIR`."""

from training.train import main

raise SystemExit(main())
