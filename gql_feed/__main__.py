from gql_feed.cli import main

raise SystemExit(main())
