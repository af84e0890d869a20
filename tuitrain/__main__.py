from tuitrain.cli.main import main

raise SystemExit(main())
