"""FLAN 2021 sentiment datasets."""

from mixtures.flan2021.spec import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
