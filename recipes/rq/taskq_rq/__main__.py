from taskq_rq.cli import main

raise SystemExit(main())
