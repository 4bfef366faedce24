"""`python -m dataset info|export|import ...`: the `jedisith-dataset` command."""

from dataset.cli import main

raise SystemExit(main())
