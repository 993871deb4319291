"""Illumina SampleSheet.csv (v1 IEM / bcl2fastq and v2 BCL Convert): which samples a run declares, on which lanes,
with which seqlane modality, and whether R2 FASTQs are expected.

Pure: text in, `SampleSheet` out, or a `SampleSheetError` whose message names the file, line and section.
Section names, column names and setting keys are matched case-insensitively; values are case-sensitive. A column
repeated under another letter case (npg's `Sample_Name` next to `sample_name`) is an error only when seqlane reads
it and no spelling is the documented one. A Sample_ID on several rows (10x-style index sets, NovaSeq X sheets with
several index pairs per sample) is one sample; only a row repeated with the same lane and index pair is an error.
A Lane of `3+4` (npg's merged lanes) lists the sample on lanes 3 and 4.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

DEFAULT_NAME = "SampleSheet.csv"

_SAMPLE_ID = re.compile(r"[A-Za-z0-9_.-]+")
_MODALITY = re.compile(r"[a-z0-9][a-z0-9-]*")
_NUMBER = re.compile(r"[0-9]+")
_LANE_LIST = re.compile(r"[0-9]+(?:\+[0-9]+)*")
_SECTION_HEADER = re.compile(r"\[(.*)\]")
_LANES = range(1, 9)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # not str.splitlines(): form feeds etc. would shift line numbers

_V1_DEMUX, _V2_DEMUX = "data", "bclconvert_data"
_SEQLANE_DATA, _SEQLANE_SETTINGS = "seqlane_data", "seqlane_settings"
_OWN_TABLES = frozenset({_V1_DEMUX, _V2_DEMUX, _SEQLANE_DATA})
# Columns seqlane reads, as documented (bcl2fastq, BCL Convert, seqlane): a spelling that wins over the same name in
# another letter case.
_READ_COLUMNS = ("Sample_ID", "Sample_Name", "Sample_Project", "Lane", "index", "index2", "Index", "Index2", "Modality")
_READ_KEYS = frozenset(column.casefold() for column in _READ_COLUMNS)


class SampleSheetError(ValueError):
    """A sheet that cannot be used.

    str() is one precise line: 'SampleSheet.csv line 12 [BCLConvert_Data]: <what is wrong>' (parts that do not apply
    are left out)."""

    line: int | None
    section: str | None
    problem: str
    name: str

    def __init__(self, problem: str, line: int | None = None, section: str | None = None, name: str = DEFAULT_NAME):
        self.problem, self.line, self.section, self.name = problem, line, section, name
        where = name + (f" line {line}" if line is not None else "") + (f" [{section}]" if section is not None else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class DeclaredSample:
    sample_id: str
    lanes: frozenset[int]  # lanes the sheet assigns it to; empty = the sheet has no Lane column (any lane)
    modality: str | None  # from [Seqlane_Data] (per sample) else [Seqlane_Settings] Modality, else None
    project: str | None  # Sample_Project when given
    # What its FASTQ names start with: v1 (bcl2fastq) Sample_Name when set, else (and always in v2) Sample_ID. When
    # it differs from the Sample_ID, bcl2fastq writes them in a `[<Sample_Project>/]<Sample_ID>/` folder.
    file_name: str = ""

    def __post_init__(self) -> None:
        if not self.file_name:
            object.__setattr__(self, "file_name", self.sample_id)


@dataclass(frozen=True, slots=True)
class SampleSheet:
    version: int  # 1 or 2
    samples: tuple[DeclaredSample, ...]  # one per Sample_ID, in order of first appearance
    paired: bool  # R2 expected: v2 Read2Cycles > 0; v1 [Reads] has two read lengths; True when no [Reads]
    default_modality: str | None


def parse_sample_sheet(text: str, name: str = DEFAULT_NAME) -> SampleSheet:
    """Parse and validate a sample sheet; raises SampleSheetError on the first problem found."""
    return _Parser(name).parse(text)


# --- internals -----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    line: int
    fields: list[str]  # stripped, trailing empty fields removed, never empty


@dataclass(slots=True)
class _Section:
    name: str  # as written
    line: int  # line of the [Name] header
    rows: list[_Row] = field(default_factory=list)


@dataclass(slots=True)
class _Table:
    section: _Section
    header_line: int
    columns: dict[str, int]  # casefolded column name -> index
    width: int
    rows: list[_Row]

    def value(self, row: _Row, column: str) -> str:
        index = self.columns.get(column)
        return row.fields[index] if index is not None and index < len(row.fields) else ""


@dataclass(slots=True)
class _Accumulated:
    sample_id: str
    lanes: set[int]
    project: str | None
    line: int
    file_name: str


class _Parser:
    def __init__(self, name: str):
        self.name = name

    def error(self, problem: str, line: int | None = None, section: _Section | str | None = None) -> SampleSheetError:
        section_name = section.name if isinstance(section, _Section) else section
        return SampleSheetError(problem, line=line, section=section_name, name=self.name)

    def parse(self, text: str) -> SampleSheet:
        sections = self.split_sections(text)
        version, demux = self.version_and_demux(sections)
        samples = self.demux_samples(demux, version)
        default_modality = self.default_modality(sections.get(_SEQLANE_SETTINGS))
        modalities = self.sample_modalities(sections.get(_SEQLANE_DATA), samples)
        for key, section in sections.items():
            if key.endswith("_data") and key not in _OWN_TABLES:
                self.check_application_table(section, samples)
        paired = self.paired(sections.get("reads"), version)
        declared = tuple(
            DeclaredSample(
                sample_id=s.sample_id,
                lanes=frozenset(s.lanes),
                modality=modalities.get(s.sample_id, default_modality),
                project=s.project,
                file_name=s.file_name,
            )
            for s in samples.values()
        )
        return SampleSheet(version=version, samples=declared, paired=paired, default_modality=default_modality)

    # structure

    def split_sections(self, text: str) -> dict[str, _Section]:
        sections: dict[str, _Section] = {}
        current: _Section | None = None
        for number, fields in _rows(text.removeprefix("\ufeff")):
            if isinstance(fields, csv.Error):
                raise self.error(f"not a valid CSV line: {fields} (check the quotes)", number, current)
            match = _SECTION_HEADER.fullmatch(fields[0])
            if match is None and fields[0].startswith("["):
                raise self.error(f"malformed section header {fields[0]!r} (expected '[Name]')", number)
            if match is None:
                if current is None:
                    raise self.error("content before the first [Section] header", number)
                current.rows.append(_Row(number, fields))
                continue
            section_name = match[1].strip()
            if not section_name:
                raise self.error("empty section name '[]'", number)
            if len(fields) > 1:
                raise self.error(f"unexpected values after section header [{section_name}]", number, section_name)
            key = section_name.casefold()
            if key in sections:
                raise self.error(f"section appears twice (first at line {sections[key].line})", number, section_name)
            current = sections[key] = _Section(section_name, number)
        return sections

    def version_and_demux(self, sections: dict[str, _Section]) -> tuple[int, _Section | None]:
        v1_table, v2_table = sections.get(_V1_DEMUX), sections.get(_V2_DEMUX)
        if v1_table is not None and v2_table is not None:
            raise self.error(
                f"both [{v1_table.name}] (v1) and [{v2_table.name}] (v2) declare samples; use one format",
                v2_table.line,
                v2_table,
            )
        declared_v2 = self.file_format_version(sections.get("header"))
        if declared_v2 is not None and v1_table is not None:
            raise self.error(
                f"FileFormatVersion 2 declares samples in [BCLConvert_Data], not [{v1_table.name}]",
                v1_table.line,
                v1_table,
            )
        if declared_v2 is not None or v2_table is not None:
            return 2, v2_table
        return 1, v1_table

    def file_format_version(self, header: _Section | None) -> int | None:
        """The line of `FileFormatVersion,2` in [Header], if any; v1 (IEM) sheets have no FileFormatVersion."""
        for row in header.rows if header is not None else ():
            if row.fields[0].casefold() == "fileformatversion":
                value = row.fields[1] if len(row.fields) > 1 else ""
                if value != "2":
                    raise self.error(f"FileFormatVersion {value!r} is not supported (expected 2)", row.line, header)
                return row.line
        return None

    def table(self, section: _Section, required: tuple[str, ...]) -> _Table | None:
        """A header row then data rows; None when the section is empty."""
        if not section.rows:
            return None
        header, *rows = section.rows
        spellings: dict[str, list[tuple[str, int]]] = {}
        for index, column in enumerate(header.fields):
            if column:
                spellings.setdefault(column.casefold(), []).append((column, index))
        columns: dict[str, int] = {}
        for key, found in spellings.items():
            names = [column for column, _ in found]
            repeated = next((column for column in names if names.count(column) > 1), None)
            if repeated is not None:
                raise self.error(f"column {repeated!r} appears twice in the header", header.line, section)
            documented = [index for column, index in found if column in _READ_COLUMNS]
            if len(found) > 1 and key in _READ_KEYS and len(documented) != 1:
                shown = ", ".join(repr(column) for column in names)
                raise self.error(
                    f"column {key!r} appears as {shown}; seqlane reads it, so write it once", header.line, section
                )
            columns[key] = documented[0] if len(found) > 1 and documented else found[0][1]
        for column in required:
            if column.casefold() not in columns:
                present = ",".join(header.fields)
                raise self.error(f"header has no {column} column (found {present!r})", header.line, section)
        return _Table(section, header.line, columns, len(header.fields), rows)

    # samples

    def demux_samples(self, demux: _Section | None, version: int) -> dict[str, _Accumulated]:
        if demux is None:
            raise self.error("no samples declared (no [Data] or [BCLConvert_Data] section)")
        table = self.table(demux, ("Sample_ID",))
        if table is None or not table.rows:
            raise self.error("no samples declared", demux.line, demux)
        has_lane = "lane" in table.columns
        samples: dict[str, _Accumulated] = {}
        seen: dict[tuple[str, int | None, str, str], int] = {}
        for row in table.rows:
            if len(row.fields) > table.width:
                raise self.error(
                    f"row has {len(row.fields)} fields but the header (line {table.header_line}) has {table.width}",
                    row.line,
                    demux,
                )
            sample_id = self.sample_id(table.value(row, "sample_id"), row, demux)
            lanes = self.lanes(table.value(row, "lane"), row, demux) if has_lane else (None,)
            indexes = (table.value(row, "index"), table.value(row, "index2"))
            for lane in lanes:
                if (sample_id, lane, *indexes) in seen:
                    on_lane = f" on lane {lane}" if lane is not None else ""
                    first = seen[(sample_id, lane, *indexes)]
                    raise self.error(
                        f"sample {sample_id!r}{on_lane} is listed twice with the same index pair (first at line "
                        f"{first})",
                        row.line,
                        demux,
                    )
                seen[(sample_id, lane, *indexes)] = row.line
            project = table.value(row, "sample_project") or None
            file_name = self.file_name(table.value(row, "sample_name"), row, demux) if version == 1 else ""
            file_name = file_name or sample_id
            known = samples.get(sample_id)
            if known is None:
                known = samples[sample_id] = _Accumulated(sample_id, set(), project, row.line, file_name)
            elif known.project != project:
                raise self.error(
                    f"sample {sample_id!r} has Sample_Project {project!r} but {known.project!r} at line {known.line}",
                    row.line,
                    demux,
                )
            elif known.file_name != file_name:
                raise self.error(
                    f"sample {sample_id!r} has Sample_Name {file_name!r} but {known.file_name!r} at line "
                    f"{known.line}, so bcl2fastq would name its FASTQs two ways",
                    row.line,
                    demux,
                )
            known.lanes.update(lane for lane in lanes if lane is not None)
        return samples

    def file_name(self, value: str, row: _Row, section: _Section) -> str:
        """bcl2fastq names a sample's FASTQs after its Sample_Name: seqlane must be able to read them back."""
        if value and _SAMPLE_ID.fullmatch(value) is None:
            raise self.error(
                f"Sample_Name {value!r} has characters other than letters, digits, '_', '-' and '.'; bcl2fastq "
                "names the sample's FASTQs after it",
                row.line,
                section,
            )
        return value

    def sample_id(self, value: str, row: _Row, section: _Section) -> str:
        if not value:
            raise self.error("empty Sample_ID", row.line, section)
        if _SAMPLE_ID.fullmatch(value) is None:
            raise self.error(
                f"Sample_ID {value!r} has characters other than letters, digits, '_', '-' and '.'", row.line, section
            )
        return value

    def lanes(self, value: str, row: _Row, section: _Section) -> tuple[int, ...]:
        """A lane number 1-8, or merged lanes as `3+4` (each listed)."""
        if _LANE_LIST.fullmatch(value) is None or any(int(lane) not in _LANES for lane in value.split("+")):
            raise self.error(
                f"Lane {value!r} is not a lane number 1-8 (merged lanes are written 3+4)"
                if "+" in value
                else f"Lane {value!r} is not a lane number 1-8",
                row.line,
                section,
            )
        return tuple(sorted({int(lane) for lane in value.split("+")}))

    def check_application_table(self, section: _Section, samples: dict[str, _Accumulated]) -> None:
        """Application tables ([DragenGermline_Data], [Cloud_Data], ...) may only name samples that get FASTQs."""
        if not section.rows:
            return
        table = self.table(section, ())
        if table is None or "sample_id" not in table.columns:
            return
        for row in table.rows:
            sample_id = table.value(row, "sample_id")
            if sample_id and sample_id not in samples:
                raise self.error(
                    f"Sample_ID {sample_id!r} is not in the demultiplexing table, so it would get no FASTQs",
                    row.line,
                    section,
                )

    # modality

    def modality(self, value: str, row: _Row, section: _Section) -> str:
        if _MODALITY.fullmatch(value) is None:
            raise self.error(
                f"Modality {value!r} is not a modality name (lower-case letters, digits and '-', e.g. germline-wgs)",
                row.line,
                section,
            )
        return value

    def default_modality(self, settings: _Section | None) -> str | None:
        modality: str | None = None
        first_line = 0
        if settings is None:
            return modality
        for row in settings.rows:
            key = row.fields[0]
            if key.casefold() != "modality":
                raise self.error(f"unknown setting {key!r} (expected 'Modality,<modality>')", row.line, settings)
            if modality is not None:
                raise self.error(f"Modality is set twice (first at line {first_line})", row.line, settings)
            if len(row.fields) > 2:
                raise self.error("expected 'Modality,<modality>' (one value)", row.line, settings)
            value = row.fields[1] if len(row.fields) > 1 else ""
            modality, first_line = self.modality(value, row, settings), row.line
        return modality

    def sample_modalities(self, section: _Section | None, samples: dict[str, _Accumulated]) -> dict[str, str]:
        table = self.table(section, ("Sample_ID", "Modality")) if section is not None else None
        if table is None:
            return {}
        modalities: dict[str, str] = {}
        lines: dict[str, int] = {}
        for row in table.rows:
            if len(row.fields) > table.width:
                raise self.error(
                    f"row has {len(row.fields)} fields but the header (line {table.header_line}) has {table.width}",
                    row.line,
                    table.section,
                )
            sample_id = self.sample_id(table.value(row, "sample_id"), row, table.section)
            if sample_id not in samples:
                raise self.error(f"Sample_ID {sample_id!r} is not in the demultiplexing table", row.line, table.section)
            if sample_id in modalities:
                raise self.error(
                    f"sample {sample_id!r} is listed twice (first at line {lines[sample_id]})", row.line, table.section
                )
            modalities[sample_id] = self.modality(table.value(row, "modality"), row, table.section)
            lines[sample_id] = row.line
        return modalities

    # reads

    def paired(self, reads: _Section | None, version: int) -> bool:
        if reads is None:
            return True
        if version == 2:
            cycles: dict[str, int] = {}
            for row in reads.rows:
                value = row.fields[1] if len(row.fields) > 1 else ""
                if len(row.fields) > 2 or _NUMBER.fullmatch(value) is None:
                    raise self.error(
                        f"expected '<Read|Index><n>Cycles,<number>', found {','.join(row.fields)!r}", row.line, reads
                    )
                cycles[row.fields[0].casefold()] = int(value)
            return cycles.get("read2cycles", 0) > 0
        lengths = []
        for row in reads.rows:
            if len(row.fields) > 1 or _NUMBER.fullmatch(row.fields[0]) is None or int(row.fields[0]) == 0:
                raise self.error(
                    f"expected a read length (one positive integer), found {','.join(row.fields)!r}", row.line, reads
                )
            lengths.append(row.line)
        if len(lengths) not in (1, 2):
            line = reads.rows[2].line if lengths else reads.line
            raise self.error(f"expected one or two read lengths, found {len(lengths)}", line, reads)
        return len(lengths) == 2


def not_utf8(error: UnicodeDecodeError, name: str = DEFAULT_NAME) -> SampleSheetError:
    """A sheet whose bytes are not UTF-8: the rejection names the file and the first byte that is not."""
    byte = error.object[error.start : error.start + 1].hex()
    return SampleSheetError(
        f"not UTF-8 text: byte 0x{byte} at byte offset {error.start} cannot be read (save the sheet as UTF-8)",
        name=name,
    )


def _rows(text: str) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(1-based line number, fields) of each non-blank line: fields stripped, trailing empty fields dropped; the
    csv.Error instead of fields for a line that is not valid CSV (quoted fields cannot span lines here)."""
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        try:
            fields = [f.strip() for f in next(csv.reader([line], strict=True), [])]
        except csv.Error as e:
            yield number, e
            continue
        while fields and not fields[-1]:
            fields.pop()
        if fields:
            yield number, fields
