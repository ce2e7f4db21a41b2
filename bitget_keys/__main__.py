"""``python -m bitget_keys``."""

from bitget_keys.cli import main

raise SystemExit(main())
