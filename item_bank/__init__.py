"""The item bank: items, their immutable published versions and the item-type registry."""
