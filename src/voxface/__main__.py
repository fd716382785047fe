from voxface.cli import main

raise SystemExit(main())
