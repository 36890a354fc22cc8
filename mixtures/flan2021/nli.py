"""FLAN 2021 nli datasets."""

from mixtures.flan2021.spec import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
