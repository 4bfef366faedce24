from playground.samples import main

raise SystemExit(main())
