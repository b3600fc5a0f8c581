"""`python main.py` launches the app, the same as `clipiqa-desktop`."""

from clipiqa_desktop.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
