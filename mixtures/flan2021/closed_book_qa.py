"""FLAN 2021 closed_book_qa datasets."""

from mixtures.flan2021.spec import DatasetSpec

SPECS: tuple[DatasetSpec, ...] = ()
