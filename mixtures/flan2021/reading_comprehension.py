"""FLAN 2021 reading_comprehension datasets."""

from mixtures.flan2021.spec import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
