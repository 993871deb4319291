"""Illumina sample sheets (v1 IEM / bcl2fastq, v2 BCL Convert): the samples a run declares, their lanes and
modality, whether R2 is expected, and a precise 'file line N [Section]: problem' for every sheet seqlane refuses."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlane.samplesheet import DeclaredSample, SampleSheet, SampleSheetError, not_utf8, parse_sample_sheet

# An IEM (Illumina Experiment Manager) sheet for bcl2fastq on a NovaSeq 6000: two samples on two lanes each.
V1_SHEET = """\
[Header]
IEMFileVersion,5
Investigator Name,J Smith
Experiment Name,WGS_batch_42
Date,21/11/2024
Workflow,GenerateFASTQ
Application,NovaSeq FASTQ Only
Instrument Type,NovaSeq/HiSeq 4000
Assay,TruSeq DNA PCR-Free
Index Adapters,IDT for Illumina-TruSeq DNA UD Indexes (96 Indexes)
Chemistry,Amplicon

[Reads]
151
151

[Settings]
Adapter,AGATCGGAAGAGCACACGTCTGAACTCCAGTCA
AdapterRead2,AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTGT

[Data]
Lane,Sample_ID,Sample_Name,Sample_Plate,Sample_Well,I7_Index_ID,index,I5_Index_ID,index2,Sample_Project,Description
1,NA12878,NA12878,PLATE_01,A01,UDI0001,CCGCGGTT,UDI0001,AGCGCTAG,GIAB,"HG001, reference"
1,NA24385,NA24385,PLATE_01,B01,UDI0002,TTATAACC,UDI0002,GATATCGA,GIAB,HG002
2,NA12878,NA12878,PLATE_01,A01,UDI0001,CCGCGGTT,UDI0001,AGCGCTAG,GIAB,"HG001, reference"
2,NA24385,NA24385,PLATE_01,B01,UDI0002,TTATAACC,UDI0002,GATATCGA,GIAB,HG002
3,pt-007.tumour,pt-007.tumour,PLATE_01,C01,UDI0003,GGACTTGG,UDI0003,CGCAGACG,ONCO_2024,
"""

# A NovaSeq X Plus sheet for BCL Convert with the DRAGEN Germline app, seqlane's modality sections and the cloud
# sections BaseSpace / ICA add.
V2_SHEET = """\
[Header]
FileFormatVersion,2
RunName,WGS_batch_43
InstrumentPlatform,NovaSeqXSeries
InstrumentType,NovaSeqXPlus
IndexOrientation,Forward

[Reads]
Read1Cycles,151
Read2Cycles,151
Index1Cycles,10
Index2Cycles,10

[Sequencing_Settings]
LibraryPrepKits,IlluminaDNAPCRFree

[BCLConvert_Settings]
SoftwareVersion,4.2.7
OverrideCycles,Y151;I10;I10;Y151
FastqCompressionFormat,gzip
AdapterRead1,CTGTCTCTTATACACATCT
AdapterRead2,CTGTCTCTTATACACATCT

[BCLConvert_Data]
Lane,Sample_ID,Index,Index2
1,NA12878,CCGCGGTT,CTAGCGCT
2,NA12878,CCGCGGTT,CTAGCGCT
1,TumourA,TTATAACC,TCGATATC
1,NormalA,GGACTTGG,CGTCTGCG

[DragenGermline_Settings]
SoftwareVersion,4.2.7
AppVersion,1.2.1
KeepFastq,TRUE
MapAlignOutFormat,cram

[DragenGermline_Data]
Sample_ID,ReferenceGenomeDir,VariantCallingMode
NA12878,hg38-alt_masked.cnv.graph.hla.rna-10-r4.0-1,AllVariantCallers
NormalA,hg38-alt_masked.cnv.graph.hla.rna-10-r4.0-1,AllVariantCallers

[Seqlane_Settings]
Modality,germline-wgs

[Seqlane_Data]
Sample_ID,Modality
TumourA,somatic-wgs

[Cloud_Settings]
GeneratedVersion,1.10.0.202311211518

[Cloud_Data]
Sample_ID,ProjectName,LibraryName,LibraryPrepKitName,IndexAdapterKitName
NA12878,GIAB,NA12878_CCGCGGTT_CTAGCGCT,IlluminaDNAPCRFree,IDTIlmnDNARNAUDPlatesABCD
TumourA,ONCO,TumourA_TTATAACC_TCGATATC,IlluminaDNAPCRFree,IDTIlmnDNARNAUDPlatesABCD
"""

V2_MINIMAL = "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Index\nNA12878,CCGCGGTT\n"


def error_of(text: str, name: str = "SampleSheet.csv") -> SampleSheetError:
    with pytest.raises(SampleSheetError) as caught:
        parse_sample_sheet(text, name)
    return caught.value


# --- realistic sheets ---------------------------------------------------------------------------------------------


def test_parse_sample_sheet_reads_an_iem_v1_sheet():
    # Given an IEM v1 sheet with two reads and samples on several lanes
    # When parsed
    sheet = parse_sample_sheet(V1_SHEET)
    # Then it is v1, paired, and each sample appears once with all its lanes and its project
    assert sheet == SampleSheet(
        version=1,
        samples=(
            DeclaredSample("NA12878", frozenset({1, 2}), modality=None, project="GIAB"),
            DeclaredSample("NA24385", frozenset({1, 2}), modality=None, project="GIAB"),
            DeclaredSample("pt-007.tumour", frozenset({3}), modality=None, project="ONCO_2024"),
        ),
        paired=True,
        default_modality=None,
    )


def test_parse_sample_sheet_reads_a_novaseq_x_v2_sheet():
    # Given a v2 sheet with app sections, a run-wide modality and one per-sample override
    # When parsed
    sheet = parse_sample_sheet(V2_SHEET)
    # Then samples come from [BCLConvert_Data] in order, with the override or the run default as modality
    assert (sheet.version, sheet.paired, sheet.default_modality) == (2, True, "germline-wgs")
    assert sheet.samples == (
        DeclaredSample("NA12878", frozenset({1, 2}), modality="germline-wgs", project=None),
        DeclaredSample("TumourA", frozenset({1}), modality="somatic-wgs", project=None),
        DeclaredSample("NormalA", frozenset({1}), modality="germline-wgs", project=None),
    )


def test_parse_sample_sheet_detects_v2_from_bclconvert_data_without_file_format_version():
    # Given a sheet with [BCLConvert_Data] but no [Header]
    # When parsed / Then it is v2
    assert parse_sample_sheet("[BCLConvert_Data]\nSample_ID\nNA12878\n").version == 2


def test_parse_sample_sheet_detects_v1_from_data_without_iem_file_version():
    # Given a [Data] table and no [Header] / When parsed / Then it is v1
    assert parse_sample_sheet("[Data]\nSample_ID\nNA12878\n").version == 1


# --- reads ----------------------------------------------------------------------------------------------------------


def test_parse_sample_sheet_v2_without_read2_cycles_is_single_end():
    # Given a v2 sheet whose [Reads] has Read1Cycles only
    text = V2_MINIMAL.replace("[BCLConvert_Data]", "[Reads]\nRead1Cycles,101\nIndex1Cycles,8\n[BCLConvert_Data]")
    # When parsed / Then no R2 is expected
    assert parse_sample_sheet(text).paired is False


def test_parse_sample_sheet_v2_with_zero_read2_cycles_is_single_end():
    text = V2_MINIMAL.replace("[BCLConvert_Data]", "[Reads]\nRead1Cycles,101\nRead2Cycles,0\n[BCLConvert_Data]")
    assert parse_sample_sheet(text).paired is False


def test_parse_sample_sheet_v1_with_one_read_length_is_single_end():
    # Given an IEM sheet with a single read length
    text = V1_SHEET.replace("[Reads]\n151\n151\n", "[Reads]\n51\n")
    # When parsed / Then no R2 is expected
    assert parse_sample_sheet(text).paired is False


def test_parse_sample_sheet_without_reads_section_expects_pairs():
    # Given sheets of both versions without [Reads] / When parsed / Then R2 is expected
    assert parse_sample_sheet(V2_MINIMAL).paired is True
    assert parse_sample_sheet("[Data]\nSample_ID\nNA12878\n").paired is True


# --- tolerance ------------------------------------------------------------------------------------------------------


def test_parse_sample_sheet_without_lane_column_declares_samples_for_any_lane():
    # Given a demultiplexing table without a Lane column
    sheet = parse_sample_sheet(V2_MINIMAL)
    # When parsed / Then the sample has no lanes (meaning: every lane)
    assert sheet.samples == (DeclaredSample("NA12878", frozenset(), None, None),)


def test_parse_sample_sheet_tolerates_bom_crlf_trailing_commas_and_whitespace():
    # Given an Excel export: BOM, CRLF, commas padding every line to the widest row, blank lines, stray spaces
    text = (
        "\ufeff[Header],,,\r\n"
        "IEMFileVersion,4,,\r\n"
        ",,,\r\n"
        "[Reads],,,\r\n"
        "151,,,\r\n"
        "151,,,\r\n"
        "\r\n"
        " [Data] ,,,\r\n"
        " Lane , Sample_ID ,index, Sample_Project \r\n"
        " 1 , NA12878 ,CCGCGGTT, GIAB \r\n"
        "2,NA12878,CCGCGGTT,GIAB\r\n"
        "1,NA24385,TTATAACC,\r\n"
        ",,,\r\n"
    )
    # When parsed
    sheet = parse_sample_sheet(text)
    # Then fields are trimmed and the padding ignored
    assert sheet == SampleSheet(
        version=1,
        samples=(
            DeclaredSample("NA12878", frozenset({1, 2}), None, "GIAB"),
            DeclaredSample("NA24385", frozenset({1}), None, None),
        ),
        paired=True,
        default_modality=None,
    )


def test_parse_sample_sheet_matches_section_and_column_names_case_insensitively():
    # Given lower-case section and column names
    text = "[header]\nfileformatversion,2\n[bclconvert_data]\nlane,sample_id\n1,NA12878\n"
    text += "[seqlane_settings]\nmodality,rna\n"
    # When parsed / Then they are recognised
    sheet = parse_sample_sheet(text)
    assert (sheet.version, sheet.samples[0].lanes, sheet.default_modality) == (2, frozenset({1}), "rna")


def test_parse_sample_sheet_ignores_application_tables_without_sample_id_column():
    # Given an application table keyed by something else
    text = V2_MINIMAL + "[TSO500L_Data]\nPair_ID,Sample_Type\nP1,DNA\n"
    # When parsed / Then it does not matter
    assert parse_sample_sheet(text).samples[0].sample_id == "NA12878"


def test_parse_sample_sheet_treats_hash_lines_as_data():
    # Given a '#' line inside the demultiplexing table (comments are not part of the format)
    error = error_of("[Data]\nSample_ID\n# controls\n")
    # When parsed / Then it is a sample row, and '#' is not a Sample_ID character
    assert (error.line, error.section) == (3, "Data")
    assert "'# controls'" in error.problem


def test_sample_sheet_error_formats_file_line_and_section():
    # Given errors with and without a line and a section / When formatted / Then the parts that apply appear
    assert str(SampleSheetError("bad", line=12, section="BCLConvert_Data")) == (
        "SampleSheet.csv line 12 [BCLConvert_Data]: bad"
    )
    assert str(SampleSheetError("bad", line=3)) == "SampleSheet.csv line 3: bad"
    assert str(SampleSheetError("bad", section="Data")) == "SampleSheet.csv [Data]: bad"
    assert str(SampleSheetError("bad", name="run1/SampleSheet.csv")) == "run1/SampleSheet.csv: bad"
    assert isinstance(SampleSheetError("bad"), ValueError)


# --- errors ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "section", "problem"),
    [
        # version
        ("[Data]\nSample_ID\nA\n[BCLConvert_Data]\nSample_ID\nA\n", 4, "BCLConvert_Data", "both [Data] (v1) and"),
        ("[Header]\nFileFormatVersion,2\n[Data]\nSample_ID\nA\n", 3, "Data", "not [Data]"),
        ("[Header]\nFileFormatVersion,3\n[BCLConvert_Data]\nSample_ID\nA\n", 2, "Header", "FileFormatVersion '3'"),
        # structure
        ("IEMFileVersion,5\n[Data]\nSample_ID\nA\n", 1, None, "content before the first [Section]"),
        ("[Data\nSample_ID\nA\n", 1, None, "malformed section header '[Data'"),
        ("[]\n[Data]\nSample_ID\nA\n", 1, None, "empty section name"),
        ("[Data],x\nSample_ID\nA\n", 1, "Data", "unexpected values after section header"),
        ("[Data]\nSample_ID\nA\n\n[Data]\nSample_ID\nB\n", 5, "Data", "section appears twice (first at line 1)"),
        ('[Data]\nSample_ID\n"A\n', 3, "Data", "not a valid CSV line: unexpected end of data"),
        ('[Data]\nSample_ID,Description\nA,"x"y\n', 3, "Data", "not a valid CSV line"),
        # demultiplexing table
        ("[Data]\nLane,Sample_Name,index\n1,A,ACGT\n", 2, "Data", "header has no Sample_ID column"),
        ("[Data]\nSample_ID,Sample_ID\nA,A\n", 2, "Data", "column 'Sample_ID' appears twice"),
        ("[Data]\nLane,Sample_ID\n9,A\n", 3, "Data", "Lane '9' is not a lane number 1-8"),
        ("[Data]\nLane,Sample_ID\n0,A\n", 3, "Data", "Lane '0'"),
        ("[Data]\nLane,Sample_ID\none,A\n", 3, "Data", "Lane 'one'"),
        ("[Data]\nLane,Sample_ID\n,A\n", 3, "Data", "Lane ''"),
        (
            "[Data]\nLane,Sample_ID\n1,A\n2,A\n1,B\n1,A\n",
            6,
            "Data",
            "'A' on lane 1 is listed twice with the same index pair (first at line 3)",
        ),
        ("[Data]\nSample_ID,index\nA,ACGT\nA,ACGT\n", 4, "Data", "'A' is listed twice with the same index pair"),
        ("[Data]\nLane,Sample_ID\n3+9,A\n", 3, "Data", "Lane '3+9' is not a lane number 1-8 (merged lanes"),
        ("[Data]\nSample_ID,Sample_Name\nA,my sample\n", 3, "Data", "Sample_Name 'my sample' has characters"),
        (
            "[Data]\nSample_ID,Sample_Name,index\nA,N1,AC\nA,N2,GT\n",
            4,
            "Data",
            "Sample_Name 'N2' but 'N1' at line 3",
        ),
        ("[Data]\nSAMPLE_ID,sample_id\nA,A\n", 2, "Data", "column 'sample_id' appears as 'SAMPLE_ID', 'sample_id'"),
        ("[BCLConvert_Data]\nLane,Sample_ID,Index\n1,,ACGT\n", 3, "BCLConvert_Data", "empty Sample_ID"),
        ("[BCLConvert_Data]\nSample_ID,Index\nNA 12878,ACGT\n", 3, "BCLConvert_Data", "Sample_ID 'NA 12878'"),
        ("[BCLConvert_Data]\nSample_ID,Index\nA/B,ACGT\n", 3, "BCLConvert_Data", "Sample_ID 'A/B'"),
        ("[Data]\nSample_ID,index\nA,ACGT,,extra\n", 3, "Data", "row has 4 fields but the header (line 2) has 2"),
        (
            "[Data]\nLane,Sample_ID,Sample_Project\n1,A,P1\n2,A,P2\n",
            4,
            "Data",
            "Sample_Project 'P2' but 'P1' at line 3",
        ),
        ("[Header]\nIEMFileVersion,5\n", None, None, "no samples declared"),
        ("[Data]\nSample_ID,index\n,,\n", 1, "Data", "no samples declared"),
        ("[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\n", 3, "BCLConvert_Data", "no samples declared"),
        # application tables
        (
            V2_MINIMAL + "[DragenGermline_Data]\nSample_ID,ReferenceGenomeDir\nNA12878,hg38\nNA24385,hg38\n",
            9,
            "DragenGermline_Data",
            "Sample_ID 'NA24385' is not in the demultiplexing table",
        ),
        (V2_MINIMAL + "[Cloud_Data]\nSample_ID,ProjectName\nNA24385,GIAB\n", 8, "Cloud_Data", "'NA24385'"),
        # modality
        (V2_MINIMAL + "[Seqlane_Settings]\nModality,Germline_WGS\n", 7, "Seqlane_Settings", "'Germline_WGS'"),
        (V2_MINIMAL + "[Seqlane_Settings]\nModality\n", 7, "Seqlane_Settings", "Modality ''"),
        (V2_MINIMAL + "[Seqlane_Settings]\nModality,rna,dna\n", 7, "Seqlane_Settings", "one value"),
        (V2_MINIMAL + "[Seqlane_Settings]\nModality,rna\nModality,dna\n", 8, "Seqlane_Settings", "set twice"),
        (V2_MINIMAL + "[Seqlane_Settings]\nModallity,rna\n", 7, "Seqlane_Settings", "unknown setting 'Modallity'"),
        (V2_MINIMAL + "[Seqlane_Data]\nSample_ID\nNA12878\n", 7, "Seqlane_Data", "header has no Modality column"),
        (V2_MINIMAL + "[Seqlane_Data]\nSample_ID,Modality\nNA12878,-rna\n", 8, "Seqlane_Data", "Modality '-rna'"),
        (V2_MINIMAL + "[Seqlane_Data]\nSample_ID,Modality\nNA12878,\n", 8, "Seqlane_Data", "Modality ''"),
        (
            V2_MINIMAL + "[Seqlane_Data]\nSample_ID,Modality\nNA24385,rna\n",
            8,
            "Seqlane_Data",
            "Sample_ID 'NA24385' is not in the demultiplexing table",
        ),
        (
            V2_MINIMAL + "[Seqlane_Data]\nSample_ID,Modality\nNA12878,rna\nNA12878,rna\n",
            9,
            "Seqlane_Data",
            "'NA12878' is listed twice (first at line 8)",
        ),
        (V2_MINIMAL + "[Seqlane_Data]\nSample_ID,Modality\nNA12878,rna,x\n", 8, "Seqlane_Data", "row has 3 fields"),
        # reads
        ("[Reads]\nRead1Cycles,151\nRead2Cycles,15l\n" + V2_MINIMAL, 3, "Reads", "'Read2Cycles,15l'"),
        ("[Reads]\nRead1Cycles,-1\n" + V2_MINIMAL, 2, "Reads", "'Read1Cycles,-1'"),
        ("[Reads]\n151\n151\n" + V2_MINIMAL, 2, "Reads", "found '151'"),
        ("[Reads]\n151\nRead2Cycles,151\n[Data]\nSample_ID\nA\n", 3, "Reads", "found 'Read2Cycles,151'"),
        ("[Reads]\n151\n15x\n[Data]\nSample_ID\nA\n", 3, "Reads", "found '15x'"),
        ("[Reads]\n0\n[Data]\nSample_ID\nA\n", 2, "Reads", "found '0'"),
        ("[Reads]\n151\n151\n151\n[Data]\nSample_ID\nA\n", 4, "Reads", "one or two read lengths, found 3"),
        ("[Reads]\n[Data]\nSample_ID\nA\n", 1, "Reads", "one or two read lengths, found 0"),
    ],
)
def test_parse_sample_sheet_refuses_with_line_and_section(text, line, section, problem):
    # Given a sheet with one problem
    # When parsed
    error = error_of(text, name="241121_A01234_0042_BHXXXXXXXX/SampleSheet.csv")
    # Then the error names the file, the line and the section of the problem
    assert (error.line, error.section) == (line, section)
    assert problem in error.problem
    where = "241121_A01234_0042_BHXXXXXXXX/SampleSheet.csv" + (f" line {line}" if line else "")
    assert str(error) == where + (f" [{section}]" if section else "") + f": {error.problem}"


def test_parse_sample_sheet_reports_the_line_in_the_file_not_in_the_section():
    # Given the realistic v1 sheet with a bad lane in its last data row (line 27, after BOM and CRLF)
    text = "\ufeff" + V1_SHEET.replace("3,pt-007.tumour", "10,pt-007.tumour").replace("\n", "\r\n")
    # When parsed / Then the message is one precise line
    assert str(error_of(text)) == "SampleSheet.csv line 27 [Data]: Lane '10' is not a lane number 1-8"


# --- properties -----------------------------------------------------------------------------------------------------

_ids = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
_declared = st.dictionaries(_ids, st.frozensets(st.integers(1, 8), min_size=1, max_size=8), min_size=1, max_size=6)


def _render(samples: dict[str, frozenset[int]], version: int, with_lanes: bool) -> str:
    table = "[Data]" if version == 1 else "[BCLConvert_Data]"
    rows = [f"{lane},{sample_id},ACGT" for sample_id, lanes in samples.items() for lane in sorted(lanes)]
    rows = rows if with_lanes else [f"{sample_id},ACGT" for sample_id in samples]
    header = "Lane,Sample_ID,index" if with_lanes else "Sample_ID,index"
    return "\n".join([table, header, *rows, ""])


@settings(max_examples=150, deadline=None)
@given(samples=_declared, version=st.sampled_from([1, 2]), with_lanes=st.booleans())
def test_parse_sample_sheet_declares_each_rendered_sample_once_with_its_lanes(samples, version, with_lanes):
    # Given a generated demultiplexing table / When parsed
    sheet = parse_sample_sheet(_render(samples, version, with_lanes))
    # Then every sample comes back once, in order, with its lanes (or none without a Lane column)
    assert sheet.version == version
    assert [s.sample_id for s in sheet.samples] == list(samples)
    assert [s.lanes for s in sheet.samples] == [lanes if with_lanes else frozenset() for lanes in samples.values()]


_fragments = st.sampled_from(
    [
        "[Header]", "[Data]", "[BCLConvert_Data]", "[Reads]", "[Seqlane_Data]", "[Seqlane_Settings]", "[Cloud_Data]",
        "FileFormatVersion,2", "Lane,Sample_ID,Sample_Project", "Sample_ID,Modality", "Modality,rna", "151",
        "Read2Cycles,151", "1,A,P", "2,A,P", "A,rna", "B", "", ",,,", "[", "\ufeff", '"', "\x00", "\x0c",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.one_of(_fragments, st.text(max_size=12)), max_size=14), crlf=st.booleans())
def test_parse_sample_sheet_accepts_or_refuses_but_never_crashes(lines, crlf):
    # Given any text, sheet-like or not
    text = ("\r\n" if crlf else "\n").join(lines)
    # When parsed
    try:
        sheet = parse_sample_sheet(text)
    except SampleSheetError as error:
        # Then a refusal is a one-line message with a line inside the text
        assert "\n" not in str(error) and "\r" not in str(error)
        assert error.line is None or 1 <= error.line <= len(re.split(r"\r\n|\r|\n", text))
    else:
        # Or an acceptance declares at least one valid sample
        assert sheet.samples and sheet.version in (1, 2)


def test_parse_sample_sheet_one_sample_on_several_index_pairs():
    # Given a 10x-style v1 sheet: one Sample_ID on four rows with four index sets, and a second sample
    text = "[Data]\nSample_ID,index,index2\nA,CTGACGCG,\nA,GGTCGTAC,\nA,TCCTTCTT,\nA,AAAGAAGA,\nB,TATGAGCT,\n"
    # When parsed
    sheet = parse_sample_sheet(text)
    # Then each Sample_ID is one sample, in order of first appearance
    assert [s.sample_id for s in sheet.samples] == ["A", "B"]


def test_parse_sample_sheet_v2_several_index_pairs_per_lane_are_one_sample():
    # Given a NovaSeq X v2 sheet with two index pairs of one sample on lane 1
    text = (
        "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nLane,Sample_ID,Index,Index2\n1,A,AAAA,CCCC\n1,A,GGGG,TTTT\n"
    )
    # When parsed / Then it is one sample on lane 1
    assert [(s.sample_id, s.lanes) for s in parse_sample_sheet(text).samples] == [("A", frozenset({1}))]


def test_parse_sample_sheet_merged_lane_value_lists_both_lanes():
    # Given npg's multilane sheet shape: a Lane of 3+4
    text = "[Data]\nLane,Sample_ID\n1,A\n3+4,B\n"
    # When parsed / Then B is on lanes 3 and 4
    assert {s.sample_id: s.lanes for s in parse_sample_sheet(text).samples} == {"A": {1}, "B": {3, 4}}


def test_parse_sample_sheet_v1_files_are_named_after_sample_name_when_set():
    # Given a v1 sheet where A has a Sample_Name, B has none, and C and D share one Sample_Name
    text = "[Data]\nSample_ID,Sample_Name\nA,alpha\nB,\nC,shared\nD,shared\n"
    # When parsed
    names = {s.sample_id: s.file_name for s in parse_sample_sheet(text).samples}
    # Then bcl2fastq's FASTQ names start with the Sample_Name when set, else the Sample_ID
    assert names == {"A": "alpha", "B": "B", "C": "shared", "D": "shared"}


def test_parse_sample_sheet_v2_files_are_named_after_sample_id():
    # Given a v2 sheet with a Sample_Name column (BCL Convert ignores it)
    text = "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Sample_Name\nA,alpha\n"
    # When parsed / Then its FASTQs are named after the Sample_ID
    assert parse_sample_sheet(text).samples[0].file_name == "A"


def test_parse_sample_sheet_column_repeated_in_another_case_uses_documented_spelling():
    # Given npg's header: Sample_Name (bcl2fastq's) and sample_name (a LIMS column), and Index/index twice
    text = "[Data]\nLane,Sample_ID,Sample_Name,sample_name,Description,description\n1,7583411,LIA_1,library_1,x,y\n"
    # When parsed / Then Sample_Name is read, and the unread repeated column is no error
    assert parse_sample_sheet(text).samples[0].file_name == "LIA_1"


def test_not_utf8_names_the_file_and_byte_offset():
    # Given a Latin-1 sheet
    data = "[Data]\nSample_ID\nJos\u00e9\n".encode("latin-1")
    # When decoding fails
    with pytest.raises(UnicodeDecodeError) as caught:
        data.decode()
    error = not_utf8(caught.value, "RUN/SampleSheet.csv")
    # Then the rejection names the file, the byte and its offset
    assert str(error) == (
        "RUN/SampleSheet.csv: not UTF-8 text: byte 0xe9 at byte offset 20 cannot be read (save the sheet as UTF-8)"
    )
