from taskq_celery.cli import main

raise SystemExit(main())
