from taskq_dramatiq.cli import main

raise SystemExit(main())
