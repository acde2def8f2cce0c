"""File drops: canonical tables read from CSV, Excel (xlsx) or Parquet files in a folder.

A folder is a local path or any fsspec URL (``s3://bucket/drops``, ``file:///data/drops``; the
remote protocols need their fsspec driver installed, e.g. ``s3fs``). Each canonical table has a
glob ``pattern`` (all matching files are read, in name order), a ``columns`` mapping (canonical
column -> column name in the file) and ``defaults`` (constants for columns the file lacks).

Encodings (CSV): unless an encoding is configured, each file is decoded strictly as UTF-8 (a BOM is
allowed and dropped), then strictly as GB18030 (a superset of GBK and GB2312, what Chinese ERPs
export). Nothing is ever decoded with replacement characters: a file neither encoding reads stops
the run with the file name and the byte offset of the first undecodable byte. Detection streams the
file in 1 MiB blocks, so memory stays bounded whatever its size.

Every file is read in chunks of ``chunk_rows`` rows (CSV by pandas' chunked reader, xlsx through
openpyxl's read-only row iterator, Parquet by record batch). Values come out as read (text for
CSV); casting to the contract types is the extractor's job (:func:`pipelines.extract.cast_lenient`).
"""

from __future__ import annotations

import codecs
import fnmatch
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipelines import contract
from pipelines.config import FileTable

DETECT_ORDER = ("utf-8-sig", "gb18030")
_BLOCK = 1 << 20


class FileDropError(RuntimeError):
    """A file drop cannot be read; the message names the table, the file and what is wrong."""


def filesystem(folder: str) -> tuple[Any, str]:
    """(fsspec filesystem, root path) of a local folder or URL."""
    from fsspec.core import url_to_fs  # fsspec only when files are configured

    try:
        fs, root = url_to_fs(folder)
    except (ImportError, ValueError) as exc:
        raise FileDropError(f"file drop folder {folder!r}: {exc}") from None
    return fs, root.rstrip("/")


def list_files(folder: str, pattern: str) -> tuple[Any, list[str]]:
    """Files of ``folder`` whose name matches ``pattern`` (sorted by name)."""
    fs, root = filesystem(folder)
    if not fs.exists(root):
        raise FileDropError(f"file drop folder {folder!r} does not exist")
    names = [p for p in fs.ls(root, detail=False) if fnmatch.fnmatch(p.rstrip("/").rsplit("/", 1)[-1], pattern)]
    return fs, sorted(names)


def _decode_error(enc: str, offset: int) -> str:
    return f"{enc} fails at byte {offset}"


def try_decode(fs: Any, path: str, encoding: str) -> int | None:
    """Decode the whole file strictly with ``encoding`` (streamed); None if it decodes, else the byte offset."""
    dec = codecs.getincrementaldecoder(encoding)("strict")
    seen = 0
    with fs.open(path, "rb") as fh:
        while True:
            block = fh.read(_BLOCK)
            pending = len(dec.getstate()[0])  # bytes of an incomplete character kept from the last block
            try:
                dec.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                return seen - pending + exc.start
            if not block:
                return None
            seen += len(block)


def detect_encoding(fs: Any, path: str, override: str | None = None) -> str:
    """The encoding to read ``path`` with: ``override`` (checked strictly) or the first of DETECT_ORDER that decodes."""
    order = (override,) if override else DETECT_ORDER
    failures = []
    for enc in order:
        offset = try_decode(fs, path, enc)
        if offset is None:
            return enc
        failures.append(_decode_error(enc, offset))
    raise FileDropError(
        f"file {path}: cannot be decoded ({'; '.join(failures)}); save it as UTF-8 or GB18030,"
        " or set the right encoding (source.encoding or the table's encoding)"
    )


def _csv_chunks(fs: Any, path: str, spec: FileTable, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    with fs.open(path, "rb") as fh:
        reader = pd.read_csv(
            fh,
            sep=spec.delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding=encoding,
            encoding_errors="strict",
            chunksize=chunk_rows,
        )
        yield from reader


def _xlsx_chunks(fs: Any, path: str, spec: FileTable, chunk_rows: int) -> Iterator[pd.DataFrame]:
    from openpyxl import load_workbook

    with fs.open(path, "rb") as fh:
        wb = load_workbook(fh, read_only=True, data_only=True)
        try:
            sheets = wb.sheetnames
            if isinstance(spec.sheet, int):
                if spec.sheet >= len(sheets):
                    raise FileDropError(f"file {path}: has {len(sheets)} sheet(s), no sheet index {spec.sheet}")
                ws = wb[sheets[spec.sheet]]
            elif spec.sheet in sheets:
                ws = wb[spec.sheet]
            else:
                raise FileDropError(f"file {path}: no sheet {spec.sheet!r} (sheets: {sheets})")
            rows = ws.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                return
            names = ["" if h is None else str(h).strip() for h in header]
            buf: list[tuple[Any, ...]] = []
            for row in rows:
                if all(v is None for v in row):
                    continue
                buf.append(row[: len(names)])
                if len(buf) >= chunk_rows:
                    yield pd.DataFrame(buf, columns=names)
                    buf = []
            if buf:
                yield pd.DataFrame(buf, columns=names)
        finally:
            wb.close()


def _parquet_chunks(fs: Any, path: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with fs.open(path, "rb") as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()


def read_chunks(
    table: str, spec: FileTable, folder: str, chunk_rows: int, encoding: str | None = None
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (file, frame with the canonical columns, values as read) for every file of ``table``."""
    t = contract.TABLES[table]
    unknown = sorted((set(spec.columns) | set(spec.defaults)) - set(t.names))
    if unknown:
        raise FileDropError(f"file drop for {table}: unknown canonical column(s) {unknown}; {table} has {t.names}")
    fs, paths = list_files(folder, spec.pattern)
    if not paths:
        raise FileDropError(f"file drop for {table}: no file matches {spec.pattern!r} in {folder}")
    for path in paths:
        lower = path.lower()
        if lower.endswith((".csv", ".txt", ".tsv")):
            enc = detect_encoding(fs, path, spec.encoding or encoding)
            chunks = _csv_chunks(fs, path, spec, chunk_rows, enc)
        elif lower.endswith((".xlsx", ".xlsm")):
            chunks = _xlsx_chunks(fs, path, spec, chunk_rows)
        elif lower.endswith(".parquet"):
            chunks = _parquet_chunks(fs, path, chunk_rows)
        else:
            raise FileDropError(f"file drop for {table}: {path} is not .csv, .xlsx or .parquet")
        first = True
        for raw in chunks:
            if first:
                _check_mapping(table, path, spec, list(raw.columns), t)
                first = False
            yield path, map_columns(raw, spec, t)


def _check_mapping(table: str, path: str, spec: FileTable, have: list[str], t: contract.Table) -> None:
    missing = []
    for col in t.names:
        if col in spec.defaults:
            continue
        src = spec.columns.get(col, col)
        if src not in have:
            if t.column(col).nullable and col not in spec.columns:
                continue
            missing.append(f"{col} (column {src!r})" if src != col else col)
    if missing:
        raise FileDropError(
            f"file drop for {table}: file {path} has no column for {', '.join(missing)}; its columns are {have}"
            " (map them with source.files." + table + ".columns)"
        )


def map_columns(raw: pd.DataFrame, spec: FileTable, t: contract.Table) -> pd.DataFrame:
    """Rename a file's columns to the canonical ones, add defaults and missing nullable columns as null."""
    out: dict[str, Any] = {}
    for col in t.names:
        if col in spec.defaults:
            out[col] = pd.Series([spec.defaults[col]] * len(raw), index=raw.index, dtype=object)
            continue
        src = spec.columns.get(col, col)
        out[col] = raw[src] if src in raw.columns else pd.Series([None] * len(raw), index=raw.index, dtype=object)
    return pd.DataFrame(out, index=raw.index)
