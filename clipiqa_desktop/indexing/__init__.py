"""The decode → batch → score pipeline, shared by the CLI and the GUI. No Qt."""
