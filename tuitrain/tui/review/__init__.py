"""The dataset review screen: go through a folder feh-style, cull, restore, fix captions."""
