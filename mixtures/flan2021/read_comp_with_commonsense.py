"""FLAN 2021 read_comp_with_commonsense datasets."""

from mixtures.flan2021.spec import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
