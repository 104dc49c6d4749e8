from awscollector.cli import main

raise SystemExit(main())
