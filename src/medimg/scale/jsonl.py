"""The JSONL files of `scale`: rows as classify --full writes them, `probs` and `metadata` JSON objects."""

from __future__ import annotations

import json

from ray.data.datasource import BlockBasedFileDatasink

from ..output import json_line


class JsonLines(BlockBasedFileDatasink):
    """Writes each block of rows (`ray_job.schema`'s Parquet columns) to a `.json` file, one JSON object a line,
    as `output.json_line` does. Ray's write_json (pandas) writes the `probs` struct as an object too, but
    leaves `metadata` a string (it is JSON text in the block: its keys vary per file) and writes a whole number
    in a column with nulls as 48.0."""

    def __init__(self, path: str):
        super().__init__(path, file_format="json")

    def write_block_to_file(self, block, file) -> None:
        lines = []
        for row in block.to_arrow().to_pylist():
            row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else None
            lines.append(json_line(row) + "\n")
        file.write("".join(lines).encode("utf-8"))
