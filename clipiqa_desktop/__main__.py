"""`python -m clipiqa_desktop` = `clipiqa-desktop`."""

from .cli import main

raise SystemExit(main())
