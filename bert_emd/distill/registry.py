"""The registries that extensions add to (layer mappings, loss terms): name -> object, in the order added."""

from __future__ import annotations


class Registry(dict):
    """name -> registered object; iterating gives the names, so a registry serves as an option's live list of
    choices."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, item):
        """Register ``item`` under its ``name``; a name taken already is an error."""
        if item.name in self:
            raise ValueError(f"a {self.kind} named {item.name!r} is registered already")
        self[item.name] = item
        return item
