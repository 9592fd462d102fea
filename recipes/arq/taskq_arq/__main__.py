from taskq_arq.cli import main

raise SystemExit(main())
